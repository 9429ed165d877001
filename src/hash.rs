//! The hash for the route table's maps: FxHash (rustc's and Firefox's), one
//! multiply and rotate per 8 bytes.
//!
//! std's SipHash resists an attacker who picks the keys of a map; here every
//! key comes from the configuration and a request only looks one up, so
//! there is nothing to resist, and SipHash cost more than the rest of a
//! lookup (a model is probed once per anchor length).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.add(u64::from_le_bytes(le));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut le = [0u8; 8];
            le.get_mut(..rest.len()).unwrap_or_default().copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(le) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash + ?Sized>(value: &T) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(value)
    }

    #[test]
    fn distinguishes_near_keys() {
        let keys: &[&[u8]] = &[
            b"",
            b"a",
            b"a\0",
            b"\0a",
            b"ab",
            b"ba",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(hash(*a), hash(*b), "{a:?} {b:?}");
            }
        }
        assert_eq!(hash("groq/"), hash(&String::from("groq/")));
    }

    #[test]
    fn maps_find_what_they_hold() {
        let mut map = FastMap::default();
        for i in 0..5000 {
            map.insert(format!("team-{i}/"), i);
        }
        assert!((0..5000).all(|i| map.get(format!("team-{i}/").as_str()) == Some(&i)));
        assert_eq!(map.get("team-5000/"), None);
    }
}
