//! A binary prefix trie over left-aligned 128-bit keys, for CIDR indicators.
//!
//! IPv4 and IPv6 each get their own trie; an IPv4 prefix is stored in the top 32 bits. Exact
//! addresses (/32, /128) are kept in a hash map instead: they are most indicators, and a trie
//! path per address would cost ~30 nodes each. Nodes are 12 bytes (two child indices and the
//! head of the node's indicator list), so a trie of 100,000 prefixes stays in a few MiB.

/// `u32::MAX` ends a list / means "no child".
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    child: [u32; 2],
    /// First indicator whose prefix ends here; the rest follow `Indicator::next`.
    head: u32,
}

const EMPTY: Node = Node {
    child: [NONE, NONE],
    head: NONE,
};

#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

impl Default for Trie {
    fn default() -> Trie {
        Trie { nodes: vec![EMPTY] }
    }
}

fn bit(key: u128, i: u8) -> usize {
    ((key >> (127 - u32::from(i))) & 1) as usize
}

impl Trie {
    /// Finds or makes the node for the first `len` bits of `key`, and returns the slot holding
    /// its list head, so the caller can push an indicator onto it.
    pub(crate) fn head_mut(&mut self, key: u128, len: u8) -> &mut u32 {
        let mut at = 0usize;
        for i in 0..len.min(128) {
            let b = bit(key, i);
            let next = self.nodes[at].child[b];
            at = if next == NONE {
                let n = self.nodes.len();
                self.nodes.push(EMPTY);
                self.nodes[at].child[b] = n as u32;
                n
            } else {
                next as usize
            };
        }
        &mut self.nodes[at].head
    }

    /// Calls `f` with the list head of every prefix that contains `key`, longest first.
    pub(crate) fn matches(&self, key: u128, width: u8, mut f: impl FnMut(u32)) {
        // Walk down, remembering the depth of the path; heads are visited on the way back so
        // the most specific prefix is reported first. 129 slots cover /0 to /128.
        let mut path = [NONE; 129];
        let mut depth = 0usize;
        let mut at = 0usize;
        path[0] = self.nodes[0].head;
        for i in 0..width.min(128) {
            let next = self.nodes[at].child[bit(key, i)];
            if next == NONE {
                break;
            }
            at = next as usize;
            depth += 1;
            path[depth] = self.nodes[at].head;
        }
        for &head in path[..=depth].iter().rev() {
            if head != NONE {
                f(head);
            }
        }
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_first_and_no_false_match() {
        let mut t = Trie::default();
        let k = |a: u32| u128::from(a) << 96;
        *t.head_mut(k(0x0a00_0000), 8) = 1; // 10.0.0.0/8
        *t.head_mut(k(0x0a01_0000), 16) = 2; // 10.1.0.0/16
        let mut seen = vec![];
        t.matches(k(0x0a01_0203), 32, |h| seen.push(h));
        assert_eq!(seen, [2, 1]);
        seen.clear();
        t.matches(k(0x0b01_0203), 32, |h| seen.push(h));
        assert!(seen.is_empty());
    }
}
