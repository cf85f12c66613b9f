use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_range_is_told_apart() {
    let cases: &[(&str, Option<Range>)] = &[
        // Allowed: public and loopback.
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", None),
        ("127.255.0.9", None),
        ("::1", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("169.255.0.1", None),
        // Refused.
        ("0.0.0.0", Some(Range::Unspecified)),
        ("0.1.2.3", Some(Range::Unspecified)),
        ("::", Some(Range::Unspecified)),
        ("169.254.0.1", Some(Range::LinkLocal)),
        ("169.254.255.255", Some(Range::LinkLocal)),
        ("fe80::1", Some(Range::LinkLocal)),
        ("febf::1", Some(Range::LinkLocal)),
        ("169.254.169.254", Some(Range::Metadata)),
        ("169.254.170.2", Some(Range::Metadata)),
        ("100.100.100.200", Some(Range::Metadata)),
        ("168.63.129.16", Some(Range::Metadata)),
        ("fd00:ec2::254", Some(Range::Metadata)),
        ("10.0.0.1", Some(Range::Private)),
        ("10.255.255.255", Some(Range::Private)),
        ("172.16.0.1", Some(Range::Private)),
        ("172.31.255.255", Some(Range::Private)),
        ("192.168.1.1", Some(Range::Private)),
        ("fc00::1", Some(Range::Private)),
        ("fdff:ffff::1", Some(Range::Private)),
        ("fec0::1", Some(Range::Private)),
        ("100.64.0.1", Some(Range::Shared)),
        ("100.127.255.255", Some(Range::Shared)),
        ("224.0.0.1", Some(Range::Reserved)),
        ("255.255.255.255", Some(Range::Reserved)),
        ("240.0.0.1", Some(Range::Reserved)),
        ("ff02::1", Some(Range::Reserved)),
        // IPv6 forms of IPv4 addresses: judged by the IPv4 address.
        ("::ffff:169.254.169.254", Some(Range::Metadata)),
        ("::ffff:a9fe:a9fe", Some(Range::Metadata)),
        ("::ffff:10.0.0.1", Some(Range::Private)),
        ("::ffff:192.168.0.1", Some(Range::Private)),
        ("::ffff:0.0.0.0", Some(Range::Unspecified)),
        ("::ffff:169.254.1.1", Some(Range::LinkLocal)),
        ("::ffff:127.0.0.1", None),
        ("::ffff:8.8.8.8", None),
        ("::a9fe:a9fe", Some(Range::Metadata)),
        ("::10.0.0.1", Some(Range::Private)),
        ("64:ff9b::a9fe:a9fe", Some(Range::Metadata)),
        ("64:ff9b::10.1.1.1", Some(Range::Private)),
        ("64:ff9b::8.8.8.8", None),
    ];
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), *want, "{addr}");
    }
}

#[test]
fn numeric_host_forms_are_read_as_the_address_a_resolver_would() {
    for host in [
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "0xA9FEA9FE",
        "0251.0376.0251.0376",
        "0xa9.0xfe.0xa9.0xfe",
        "169.254.43518",
        "169.16689662",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:a9fe]",
        "%31%36%39.254.169.254",
    ] {
        let got = literal(host).unwrap_or_else(|| panic!("{host} not read as an address"));
        let v4 = match got {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => embedded_v4(v6).unwrap(),
        };
        assert_eq!(v4, Ipv4Addr::new(169, 254, 169, 254), "{host}");
        assert_eq!(
            Policy::default().check_url_host(host).unwrap_err().range,
            Range::Metadata,
            "{host}"
        );
    }
    assert_eq!(literal("017700000001"), Some(ip("127.0.0.1")));
    assert_eq!(literal("0x7f.1"), Some(ip("127.0.0.1")));
    for name in [
        "api.openai.com",
        "localhost",
        "vllm.internal",
        "a-1.example",
    ] {
        assert_eq!(literal(name), None, "{name}");
    }
}

#[test]
fn loopback_and_public_hosts_pass_at_load_and_others_are_refused() {
    let p = Policy::default();
    for ok in [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "api.openai.com",
        "8.8.8.8",
        "2130706433",
        "[::ffff:127.0.0.1]",
    ] {
        assert_eq!(p.check_url_host(ok), Ok(()), "{ok}");
    }
    for (bad, range) in [
        ("10.1.2.3", Range::Private),
        ("[fd12::1]", Range::Private),
        ("0.0.0.0", Range::Unspecified),
        ("[::]", Range::Unspecified),
        ("[fe80::1]", Range::LinkLocal),
        ("100.64.1.1", Range::Shared),
        ("[fd00:ec2::254]", Range::Metadata),
        ("metadata.google.internal", Range::Metadata),
        ("Metadata.Google.Internal.", Range::Metadata),
        ("metadata", Range::Metadata),
        ("instance-data", Range::Metadata),
    ] {
        let r = p.check_url_host(bad).unwrap_err();
        assert_eq!(r.range, range, "{bad}");
        let msg = r.to_string();
        assert!(msg.contains(SETTING), "{msg}");
    }
}

#[test]
fn the_allow_list_takes_networks_addresses_and_names() {
    let mut p = Policy::default();
    for e in [
        "10.0.0.0/8",
        "192.168.1.7",
        "fd00::/8",
        "vllm.internal",
        "*.svc.cluster.local",
        "GPU-Box.LAN.",
    ] {
        p.allow(e).unwrap();
    }
    for bad in [
        "",
        "http://10.0.0.1/",
        "10.0.0.0/33",
        "a b",
        "*",
        "*.",
        "10.0.0.1:80",
    ] {
        let err = p.clone().allow(bad).unwrap_err();
        assert!(err.contains(SETTING), "{err}");
    }
    // By address or network, whatever the name.
    assert_eq!(p.check("x.example", ip("10.9.9.9")), Ok(()));
    assert_eq!(p.check("x.example", ip("::ffff:10.9.9.9")), Ok(()));
    assert_eq!(p.check("x.example", ip("192.168.1.7")), Ok(()));
    assert!(p.check("x.example", ip("192.168.1.8")).is_err());
    assert_eq!(p.check("x.example", ip("fd12::1")), Ok(()));
    assert!(p.check("x.example", ip("fc00::1")).is_err());
    assert_eq!(p.check_url_host("10.0.0.5"), Ok(()));
    assert_eq!(p.check_url_host("167772165"), Ok(()), "10.0.0.5, decimal");
    // By name: any private address it resolves to, never a metadata one.
    assert_eq!(p.check("vllm.internal", ip("172.20.0.3")), Ok(()));
    assert_eq!(p.check("VLLM.internal.", ip("172.20.0.3")), Ok(()));
    assert_eq!(p.check("gpu-box.lan", ip("100.64.0.9")), Ok(()));
    assert_eq!(p.check("a.b.svc.cluster.local", ip("172.20.0.3")), Ok(()));
    assert!(p.check("svc.cluster.local", ip("172.20.0.3")).is_err());
    assert!(p.check("other.internal", ip("172.20.0.3")).is_err());
    assert_eq!(
        p.check("vllm.internal", ip("169.254.169.254"))
            .unwrap_err()
            .range,
        Range::Metadata
    );
    // Metadata only when listed by address.
    let mut m = Policy::default();
    m.allow("169.254.169.254").unwrap();
    assert_eq!(m.check("x", ip("169.254.169.254")), Ok(()));
    assert_eq!(m.check_url_host("[::ffff:169.254.169.254]"), Ok(()));
    let mut n = Policy::default();
    n.allow("metadata.google.internal").unwrap();
    assert_eq!(n.check_url_host("metadata.google.internal"), Ok(()));
    assert!(
        n.check("metadata.google.internal", ip("169.254.169.254"))
            .is_err()
    );
    // Policies differ in their fingerprint.
    assert_ne!(p.fingerprint(), Policy::default().fingerprint());
}

#[test]
fn messages_name_the_setting_and_the_public_one_hides_the_address() {
    let by_name = Policy::default()
        .check("vllm.internal", ip("10.0.0.5"))
        .unwrap_err();
    assert_eq!(
        by_name.to_string(),
        "`vllm.internal` resolves to 10.0.0.5, a private address; the gateway connects to private, link-local and metadata addresses only when server.allowed_private_upstreams lists them"
    );
    let literal = Policy::default()
        .check("169.254.169.254", ip("169.254.169.254"))
        .unwrap_err();
    assert!(
        literal
            .to_string()
            .starts_with("169.254.169.254 is a cloud metadata address;"),
        "{literal}"
    );
    let public = by_name.public_message();
    assert!(public.contains(SETTING), "{public}");
    assert!(public.contains("a private address"), "{public}");
    assert!(
        !public.contains("10.0.0.5") && !public.contains("vllm"),
        "{public}"
    );
}

/// A scripted resolver: each lookup takes the next answer (the last repeats).
struct Script(
    std::sync::Mutex<Vec<Vec<IpAddr>>>,
    std::sync::atomic::AtomicUsize,
);

impl Dns for Script {
    fn lookup(&self, _: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let n = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answers = self.0.lock().unwrap();
        let a = answers[n.min(answers.len() - 1)].clone();
        Box::pin(async move { Ok(a) })
    }
}

#[tokio::test]
async fn the_resolver_checks_every_address_of_each_answer_once() {
    let dns = Arc::new(Script(
        std::sync::Mutex::new(vec![
            vec![ip("127.0.0.1")],
            vec![ip("127.0.0.1"), ip("10.0.0.1")],
            vec![ip("::ffff:169.254.169.254")],
            vec![],
        ]),
        Default::default(),
    ));
    let r = Resolver::new(Arc::default(), dns.clone());
    let first = r.resolve("rebind.test").await.unwrap();
    assert_eq!(first, vec![SocketAddr::new(ip("127.0.0.1"), 0)]);
    // One refused address refuses the answer.
    let mixed = r.resolve("rebind.test").await.unwrap_err();
    assert_eq!(refused_in(mixed.as_ref()).unwrap().range, Range::Private);
    let mapped = r.resolve("rebind.test").await.unwrap_err();
    assert_eq!(refused_in(mapped.as_ref()).unwrap().range, Range::Metadata);
    let empty = r.resolve("rebind.test").await.unwrap_err();
    assert!(refused_in(empty.as_ref()).is_none());
    assert_eq!(dns.1.load(std::sync::atomic::Ordering::SeqCst), 4);
}
