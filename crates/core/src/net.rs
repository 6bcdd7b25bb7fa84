//! IPv6 prefixes and address arithmetic.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// An IPv6 prefix: an address and a length 0..=128. The address bits past
/// the length are always zero (construction masks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

/// Why a prefix string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/` in the text.
    #[error("`{0}` is not a prefix (expected ADDRESS/LENGTH, e.g. 2001:db8::/56)")]
    MissingLength(String),
    /// The address part is not an IPv6 address.
    #[error("`{0}` is not an IPv6 address")]
    BadAddress(String),
    /// The length is not a number in 0..=128.
    #[error("prefix length `{0}` is not a number from 0 to 128")]
    BadLength(String),
    /// Bits are set past the prefix length.
    #[error("`{0}` has bits set past its length (did you mean {1}?)")]
    HostBits(String, Ipv6Prefix),
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        // 1..=127: a shift of 1..=127.
        l => u128::MAX << 128u32.saturating_sub(u32::from(l)),
    }
}

impl Ipv6Prefix {
    /// A prefix; bits past `len` are cleared, `len` is capped at 128.
    pub fn new(addr: Ipv6Addr, len: u8) -> Ipv6Prefix {
        let len = len.min(128);
        Ipv6Prefix {
            addr: Ipv6Addr::from(u128::from(addr) & mask(len)),
            len,
        }
    }

    /// The first address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True only for `::/0`'s length... never: a prefix always has a size.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `a` lies inside.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & mask(self.len) == u128::from(self.addr)
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Ipv6Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv6Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// The last address.
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | !mask(self.len))
    }

    /// The `index`-th sub-prefix of length `sub_len`, if it exists.
    pub fn subprefix(&self, sub_len: u8, index: u128) -> Option<Ipv6Prefix> {
        if sub_len < self.len || sub_len > 128 {
            return None;
        }
        let bits = u32::from(sub_len.saturating_sub(self.len));
        if bits < 128 && index >> bits != 0 {
            return None;
        }
        let shift = 128u32.saturating_sub(u32::from(sub_len));
        let offset = if shift >= 128 { 0 } else { index << shift };
        Some(Ipv6Prefix::new(
            Ipv6Addr::from(u128::from(self.addr) | offset),
            sub_len,
        ))
    }

    /// Index of `sub` among this prefix's sub-prefixes of `sub.len()`.
    pub fn subprefix_index(&self, sub: &Ipv6Prefix) -> Option<u128> {
        if !self.covers(sub) {
            return None;
        }
        let shift = 128u32.saturating_sub(u32::from(sub.len));
        // `self` covers `sub`: sub.addr >= self.addr.
        let rel = u128::from(sub.addr).saturating_sub(u128::from(self.addr));
        Some(if shift >= 128 { 0 } else { rel >> shift })
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::MissingLength(s.to_string()))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| PrefixError::BadAddress(a.to_string()))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| PrefixError::BadLength(l.to_string()))?;
        let p = Ipv6Prefix::new(addr, len);
        if p.addr != addr {
            return Err(PrefixError::HostBits(s.to_string(), p));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv6Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert!(matches!(
            "2001:db8::1/64".parse::<Ipv6Prefix>(),
            Err(PrefixError::HostBits(..))
        ));
        assert!(matches!(
            "2001:db8::".parse::<Ipv6Prefix>(),
            Err(PrefixError::MissingLength(_))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Ipv6Prefix>(),
            Err(PrefixError::BadLength(_))
        ));
        assert_eq!(p("::/0").len(), 0);
    }

    #[test]
    fn contains_covers_overlaps() {
        let a = p("2001:db8:8000::/40");
        assert!(a.contains("2001:db8:80ff:ffff::1".parse().unwrap()));
        assert!(!a.contains("2001:db8:8100::".parse().unwrap()));
        assert!(a.covers(&p("2001:db8:8000:100::/56")));
        assert!(!p("2001:db8:8000:100::/56").covers(&a));
        assert!(p("2001:db8:8000:100::/56").overlaps(&a));
        assert!(!p("2001:db8:9000::/40").overlaps(&a));
        assert_eq!(
            a.last(),
            "2001:db8:80ff:ffff:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
    }

    #[test]
    fn subprefix_indexing() {
        let a = p("2001:db8:8000::/40");
        assert_eq!(a.subprefix(56, 0), Some(p("2001:db8:8000::/56")));
        assert_eq!(a.subprefix(56, 1), Some(p("2001:db8:8000:100::/56")));
        assert_eq!(a.subprefix(56, 65535), Some(p("2001:db8:80ff:ff00::/56")));
        assert_eq!(a.subprefix(56, 65536), None);
        assert_eq!(a.subprefix_index(&p("2001:db8:8000:100::/56")), Some(1));
        assert_eq!(
            p("::/0").subprefix(128, u128::MAX),
            Some(p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"))
        );
    }
}
