//! Protobuf definitions of QCSS (being written; see proto/README.md).
