//! mio I/O threads. (Being written.)
