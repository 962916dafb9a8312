//! The addresses network connectors block: one IP address (v4 or v6) or a network in CIDR
//! notation, read from a call parameter and checked before anything is sent, so that what
//! reaches a firewall's API (inside XML, a URL path or JSON) is always a well-formed address
//! and never text a playbook happened to render.

use std::fmt;
use std::net::IpAddr;

use riposte_respond::ConnectorError;

/// A host address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    Host(IpAddr),
    /// An address and its prefix length; the address is kept as written (`10.1.2.0/24`).
    Network(IpAddr, u8),
}

impl Address {
    /// Reads `text` as `192.0.2.7`, `2001:db8::7` or `198.51.100.0/24`; `operation` and
    /// `param` only name the call in the error.
    pub fn parse(text: &str, operation: &str, param: &str) -> Result<Address, ConnectorError> {
        let bad = |why: &str| ConnectorError::Config {
            message: format!(
                "operation `{operation}`: parameter `{param}` = `{}` is not {why}",
                text.chars().take(80).collect::<String>()
            ),
        };
        let t = text.trim();
        match t.split_once('/') {
            None => t
                .parse::<IpAddr>()
                .map(Address::Host)
                .map_err(|_| bad("an IP address or a network in CIDR notation")),
            Some((addr, len)) => {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| bad("an IP address or a network in CIDR notation"))?;
                let len: u8 = len
                    .parse()
                    .map_err(|_| bad("a network: its prefix length is not a number"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(bad(&format!("a network: the prefix is longer than {max}")));
                }
                // A /32 (or /128) is one host: firewalls store and list it as the address.
                if len == max {
                    Ok(Address::Host(ip))
                } else {
                    Ok(Address::Network(ip, len))
                }
            }
        }
    }

    pub fn ip(&self) -> IpAddr {
        match self {
            Address::Host(ip) | Address::Network(ip, _) => *ip,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.ip().is_ipv6()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Host(ip) => write!(f, "{ip}"),
            Address::Network(ip, len) => write!(f, "{ip}/{len}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_networks_and_refusals() {
        let p = |t: &str| Address::parse(t, "block_ip", "ip");
        assert_eq!(p("192.0.2.7").expect("v4").to_string(), "192.0.2.7");
        assert_eq!(p(" 2001:db8::7 ").expect("v6").to_string(), "2001:db8::7");
        assert_eq!(
            p("198.51.100.0/24").expect("net").to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(p("192.0.2.7/32").expect("host"), p("192.0.2.7").expect("h"));
        for bad in [
            "",
            "192.0.2",
            "192.0.2.7/33",
            "2001:db8::/129",
            "10.0.0.0/x",
            "evil\"><x/>",
        ] {
            let e = p(bad).expect_err(bad);
            assert!(e.to_string().contains("parameter `ip`"), "{bad}: {e}");
        }
    }
}
