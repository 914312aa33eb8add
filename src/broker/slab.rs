//! A slab: values stored by reusable index, each index with a generation that changes on removal.
//!
//! Owns: [`Slab`]. Used for connections (index = mio token) and sessions (index + generation =
//! [`SessionRef`](crate::message::SessionRef)). Must not touch: what it stores.

/// Values by index; freed indexes are reused, and their generation is bumped so stale references
/// can be detected.
pub struct Slab<T> {
    entries: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// The index the next `insert` will use.
    pub fn vacant_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    /// The current generation of an index (of the value there now, or of the next one inserted).
    pub fn generation(&self, key: usize) -> u32 {
        self.entries.get(key).map_or(0, |e| e.0)
    }

    /// Stores a value and returns its index.
    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(key) => {
                self.entries[key].1 = Some(value);
                key
            }
            None => {
                self.entries.push((0, Some(value)));
                self.entries.len() - 1
            }
        }
    }

    /// Removes and returns the value at `key`, bumping the index's generation.
    pub fn remove(&mut self, key: usize) -> Option<T> {
        let entry = self.entries.get_mut(key)?;
        let value = entry.1.take()?;
        entry.0 = entry.0.wrapping_add(1);
        self.free.push(key);
        self.len -= 1;
        Some(value)
    }

    /// The value at `key`.
    pub fn get(&self, key: usize) -> Option<&T> {
        self.entries.get(key)?.1.as_ref()
    }

    /// The value at `key`, mutably.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.1.as_mut()
    }

    /// Number of values stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All values with their indexes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, e)| Some((k, e.1.as_ref()?)))
    }

    /// All values with their indexes, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(k, e)| Some((k, e.1.as_mut()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_indexes_and_bumps_generation() {
        let mut s = Slab::default();
        let a = s.insert("a");
        assert_eq!(s.generation(a), 0);
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.vacant_key(), a);
        let b = s.insert("b");
        assert_eq!(a, b);
        assert_eq!(s.generation(b), 1);
        assert_eq!(s.len(), 1);
    }
}
