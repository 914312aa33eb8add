//! Encoder: packets in, bytes out. (Being written.)
