//! Interaction latency through the fake Discord: from the INTERACTION_CREATE the fake sends to the interaction
//! callback it receives, for 1000 `/status` interactions one after another, against the release `dreamos`.
//! Baseline, measured in the same run: the fake's own round trip for a no-op REST route, over a kept-alive
//! connection from this process.
//!
//! ```text
//! cargo bench -p dreamos-tests --bench discord            # -- --count N
//! ```

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use dreamos_tests::{
    fake_discord::{FakeDiscord, Member},
    Console,
};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `GET /api/v10/noop` over one kept-alive connection, `count` times.
fn noop_round_trips(base: &str, count: usize) -> Vec<Duration> {
    let address = base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).expect("connect to the fake");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        write!(
            writer,
            "GET /api/v10/noop HTTP/1.1\r\nHost: {address}\r\n\r\n"
        )
        .expect("write");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        times.push(start.elapsed());
    }
    times
}

fn main() {
    let count: usize = std::env::args()
        .skip_while(|a| a != "--count")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("DISCORD_TOKEN", "bench-token"),
        ("DREAMOS_DISCORD__API_URL", fake.base_url.as_str()),
        ("DREAMOS_DISCORD__GUILD_IDS", "[3000]"),
        ("DREAMOS_DISCORD__CAPTAIN_ROLE_IDS", "[6001]"),
        ("DREAMOS_LOG__FILES", "false"),
    ];
    let mut console = Console::start(&dir.path().join("data"), &["--console"], &env);
    fake.wait_identified(1, Duration::from_secs(60));
    fake.wait_request("the registration", Duration::from_secs(60), |r| {
        r.method == "PUT"
    });
    let member = Member::new(5000, "bench", &[6001]);
    // Warm up both paths.
    for _ in 0..20 {
        let token = fake.command(&member, "status", json!([]));
        fake.callback(&token, Duration::from_secs(30));
    }
    noop_round_trips(&fake.base_url, 50);

    let baseline = {
        let mut t = noop_round_trips(&fake.base_url, count);
        t.sort();
        t
    };
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let sent = Instant::now();
        let token = fake.command(&member, "status", json!([]));
        let callback = fake.callback(&token, Duration::from_secs(30));
        assert_eq!(callback.body["type"], 4, "{}", callback.body);
        latencies.push(callback.at.duration_since(sent));
    }
    latencies.sort();
    println!("dreamos Discord interaction latency ({count} /status interactions, release build)");
    println!(
        "baseline  the fake's no-op REST round trip          p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99))
    );
    println!(
        "ours      INTERACTION_CREATE -> callback received   p50 {:>7.3} ms  p99 {:>7.3} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    println!("target    p99 <= 50 ms");
    console.close_stdin();
    console.finish();
}
