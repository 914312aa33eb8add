//! Decoder: bytes in, packets or errors out. (Being written.)
