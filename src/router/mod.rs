//! Sharded topic router. (Being written.)
