//! The validator (being written): checks each transaction of a block and computes its validation code.
