//! Many short byte strings in one buffer. A vocabulary of 262,144 tokens (Gemma 3) held as
//! `Vec<String>` costs a header and an allocation per token, about 40 bytes before the text;
//! two such tables (text and output bytes) were 20 MB of the wasm heap.

#[derive(Default)]
pub struct PackedBytes {
    data: Vec<u8>,
    /// End offset of each entry in `data`.
    ends: Vec<u32>,
}

impl PackedBytes {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The longest entry's length.
    pub fn longest(&self) -> usize {
        let mut start = 0usize;
        let mut most = 0usize;
        for &end in &self.ends {
            most = most.max((end as usize).saturating_sub(start));
            start = end as usize;
        }
        most
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.data.get(start..end)
    }

    fn push(&mut self, item: &[u8]) {
        self.data.extend_from_slice(item);
        // A vocabulary's text is a few MB; u32 offsets hold 4 GB.
        self.ends.push(self.data.len() as u32);
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for PackedBytes {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut p = PackedBytes::default();
        for item in iter {
            p.push(item.as_ref());
        }
        p.data.shrink_to_fit();
        p.ends.shrink_to_fit();
        p
    }
}

/// `PackedBytes` that hold UTF-8 text.
#[derive(Default)]
pub struct PackedStrings(PackedBytes);

impl PackedStrings {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        // Every entry went in as a whole `str`, so this never fails.
        self.0.get(i).and_then(|b| std::str::from_utf8(b).ok())
    }
}

impl<T: AsRef<str>> FromIterator<T> for PackedStrings {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut p = PackedBytes::default();
        for s in iter {
            p.push(s.as_ref().as_bytes());
        }
        p.data.shrink_to_fit();
        p.ends.shrink_to_fit();
        PackedStrings(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_as_they_went_in() {
        let words = ["", "a", "▁the", "", "\u{1F600}x"];
        let p: PackedStrings = words.iter().collect();
        assert_eq!(p.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(p.get(i), Some(*w));
        }
        assert_eq!(p.get(words.len()), None);
        let b: PackedBytes = [vec![1u8, 2], vec![], vec![255]].into_iter().collect();
        assert_eq!(b.get(0), Some(&[1u8, 2][..]));
        assert_eq!(b.get(1), Some(&[][..]));
        assert_eq!(b.get(2), Some(&[255u8][..]));
        assert_eq!(b.get(3), None);
    }
}
