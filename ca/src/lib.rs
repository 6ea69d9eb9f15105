//! The QCSS certificate authority (being written).
