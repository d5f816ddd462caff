//! An IP address written as text without `fmt`: `X-Forwarded-For` gets
//! one on every forwarded request, and `Display` for an IPv4 address
//! (which supports padding) took about 1,500 instructions a time.

use std::io::Write;
use std::net::IpAddr;

/// Appends `ip` to `buffer` as `Display` writes it.
pub(crate) fn push_ip(buffer: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            let mut number = itoa::Buffer::new();
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    buffer.push(b'.');
                }
                buffer.extend_from_slice(number.format(octet).as_bytes());
            }
        }
        // Rare on the paths that matter, and compressing zeros is fiddly:
        // `Display` it is.
        IpAddr::V6(ip) => {
            let _ = write!(buffer, "{ip}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_read_as_display_writes_them() {
        let addresses: [IpAddr; 6] = [
            Ipv4Addr::new(0, 0, 0, 0).into(),
            Ipv4Addr::new(127, 0, 0, 1).into(),
            Ipv4Addr::new(10, 20, 100, 255).into(),
            Ipv4Addr::new(255, 255, 255, 255).into(),
            Ipv6Addr::LOCALHOST.into(),
            "2001:db8::ff00:42:8329".parse::<Ipv6Addr>().unwrap().into(),
        ];
        for ip in addresses {
            let mut written = b"x ".to_vec();
            push_ip(&mut written, ip);
            assert_eq!(written, format!("x {ip}").into_bytes());
        }
    }
}
