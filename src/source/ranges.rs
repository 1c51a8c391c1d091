//! Address ranges: CIDR blocks and a set of them that answers "is this address in
//! one?" in O(log n).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A CIDR block, such as `52.4.0.0/14` or `2600:1f18::/36`. A bare address is the
/// block of that one address. Bits below the prefix are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block of `prefix` leading bits of `address`.
    ///
    /// # Errors
    ///
    /// [`InvalidCidr`] when `prefix` is longer than the address.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, InvalidCidr> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(InvalidCidr(format!("{address}/{prefix}")));
        }
        Ok(Self { address, prefix })
    }

    /// The block's address, as given.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.span(), Point::of(ip)) {
            (Span::V4(first, last), Point::V4(x)) => (first..=last).contains(&x),
            (Span::V6(first, last), Point::V6(x)) => (first..=last).contains(&x),
            _ => false,
        }
    }

    /// The first and last address of the block, an IPv4-mapped block as IPv4.
    fn span(&self) -> Span {
        match self.address {
            IpAddr::V4(address) => {
                let (first, last) = span(u32::from(address), self.prefix, 32);
                Span::V4(first, last)
            }
            IpAddr::V6(address) => match address.to_ipv4_mapped() {
                Some(mapped) if self.prefix >= 96 => {
                    let (first, last) = span(u32::from(mapped), self.prefix - 96, 32);
                    Span::V4(first, last)
                }
                _ => {
                    let (first, last) = span(u128::from(address), self.prefix, 128);
                    Span::V6(first, last)
                }
            },
        }
    }
}

/// A block's addresses, by family.
enum Span {
    V4(u32, u32),
    V6(u128, u128),
}

/// An address as a number, an IPv4-mapped IPv6 address as IPv4.
enum Point {
    V4(u32),
    V6(u128),
}

impl Point {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(address) => Self::V4(u32::from(address)),
            IpAddr::V6(address) => match address.to_ipv4_mapped() {
                Some(mapped) => Self::V4(u32::from(mapped)),
                None => Self::V6(u128::from(address)),
            },
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCidr(text.to_owned());
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let prefix = match prefix {
            Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse().map_err(|_| invalid())?
            }
            Some(_) => return Err(invalid()),
            None if address.is_ipv4() => 32,
            None => 128,
        };
        Self::new(address, prefix).map_err(|_| invalid())
    }
}

/// A text that is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCidr(String);

impl fmt::Display for InvalidCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an address or a CIDR block", self.0)
    }
}

impl std::error::Error for InvalidCidr {}

/// A set of address ranges, merged and sorted: a lookup is a binary search, whatever
/// the number of ranges.
///
/// ```
/// use genesys_webhook::source::SourceRanges;
///
/// let ranges: SourceRanges = "52.4.0.0/14, 2600:1f18::/36".parse()?;
/// assert!(ranges.contains("52.5.1.2".parse()?));
/// assert!(ranges.contains("::ffff:52.5.1.2".parse()?));
/// assert!(!ranges.contains("52.8.0.1".parse()?));
/// assert!(ranges.contains("2600:1f18::1".parse()?));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRanges {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    blocks: usize,
}

impl SourceRanges {
    /// The set of `blocks`.
    pub fn new(blocks: impl IntoIterator<Item = Cidr>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut count = 0;
        for block in blocks {
            count += 1;
            match block.span() {
                Span::V4(first, last) => v4.push((first, last)),
                Span::V6(first, last) => v6.push((first, last)),
            }
        }
        Self {
            v4: merged(v4),
            v6: merged(v6),
            blocks: count,
        }
    }

    /// Whether `ip` is in one of the ranges (an IPv4-mapped IPv6 address counts as
    /// IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match Point::of(ip) {
            Point::V4(x) => within(&self.v4, x),
            Point::V6(x) => within(&self.v6, x),
        }
    }

    /// How many blocks it was made of.
    pub fn len(&self) -> usize {
        self.blocks
    }

    /// Whether it admits no address at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

impl FromStr for SourceRanges {
    type Err = InvalidCidr;

    /// Blocks separated by commas or white space.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let blocks = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(Self::new(blocks))
    }
}

impl FromIterator<Cidr> for SourceRanges {
    fn from_iter<I: IntoIterator<Item = Cidr>>(blocks: I) -> Self {
        Self::new(blocks)
    }
}

/// The first and last address of a block of `prefix` bits in a `bits`-bit space.
fn span<T>(address: T, prefix: u8, bits: u32) -> (T, T)
where
    T: Copy
        + std::ops::Shl<u32, Output = T>
        + std::ops::Not<Output = T>
        + std::ops::BitAnd<Output = T>
        + std::ops::BitOr<Output = T>
        + From<u8>,
{
    let host_bits = bits - u32::from(prefix);
    let ones = !T::from(0);
    // Shifting by the full width overflows: a /0 block has no network bits.
    let network = if host_bits == bits {
        T::from(0)
    } else {
        ones << host_bits
    };
    (address & network, (address & network) | !network)
}

fn merged<T: Ord + Copy + Successor>(mut spans: Vec<(T, T)>) -> Vec<(T, T)> {
    spans.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if last.1.successor().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end)
            }
            _ => out.push((start, end)),
        }
    }
    out.shrink_to_fit();
    out
}

fn within<T: Ord + Copy>(spans: &[(T, T)], x: T) -> bool {
    let after = spans.partition_point(|&(start, _)| start <= x);
    after > 0 && x <= spans[after - 1].1
}

trait Successor: Sized {
    fn successor(self) -> Option<Self>;
}

impl Successor for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Successor for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_blocks_and_bare_addresses_and_refuses_the_rest() {
        assert_eq!("10.0.0.0/8".parse::<Cidr>().unwrap().prefix(), 8);
        assert_eq!("10.1.2.3".parse::<Cidr>().unwrap().prefix(), 32);
        assert_eq!("::1".parse::<Cidr>().unwrap().prefix(), 128);
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_addresses_at_the_edges_of_merged_ranges() {
        let ranges: SourceRanges = "10.0.0.0/24 10.0.1.0/24 10.0.0.128/25 192.168.1.7 0.0.0.0/32"
            .parse()
            .unwrap();
        assert_eq!(ranges.len(), 5);
        for inside in [
            "10.0.0.0",
            "10.0.0.255",
            "10.0.1.0",
            "10.0.1.255",
            "192.168.1.7",
            "0.0.0.0",
        ] {
            assert!(ranges.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "9.255.255.255",
            "10.0.2.0",
            "192.168.1.6",
            "192.168.1.8",
            "0.0.0.1",
            "::",
        ] {
            assert!(!ranges.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn a_slash_zero_admits_its_whole_family_only() {
        let v4: SourceRanges = "0.0.0.0/0".parse().unwrap();
        assert!(v4.contains(ip("255.255.255.255")));
        assert!(v4.contains(ip("::ffff:1.2.3.4")));
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6: SourceRanges = "::/0".parse().unwrap();
        assert!(v6.contains(ip("ffff::1")));
        assert!(!v6.contains(ip("1.2.3.4")));
    }

    #[test]
    fn ipv4_mapped_blocks_and_addresses_meet() {
        let ranges: SourceRanges = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(ranges.contains(ip("10.200.0.1")));
        assert!(ranges.contains(ip("::ffff:10.200.0.1")));
        assert!(!ranges.contains(ip("11.0.0.1")));
    }

    #[test]
    fn agrees_with_a_linear_scan_on_random_blocks() {
        // A small deterministic generator: the same blocks every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let blocks: Vec<Cidr> = (0..500)
            .map(|_| {
                let address = IpAddr::V4(Ipv4Addr::from(next() as u32));
                Cidr::new(address, 8 + (next() % 25) as u8).unwrap()
            })
            .collect();
        let set = SourceRanges::new(blocks.iter().copied());
        for _ in 0..20_000 {
            let probe = IpAddr::V4(Ipv4Addr::from(next() as u32));
            let linear = blocks.iter().any(|b| {
                let (start, end) = span(
                    u32::from(match b.address() {
                        IpAddr::V4(a) => a,
                        IpAddr::V6(_) => unreachable!(),
                    }),
                    b.prefix(),
                    32,
                );
                let IpAddr::V4(p) = probe else { unreachable!() };
                (start..=end).contains(&u32::from(p))
            });
            assert_eq!(set.contains(probe), linear, "{probe}");
        }
    }
}
