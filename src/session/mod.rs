//! Per-client session state machine. (Being written.)
