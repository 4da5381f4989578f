//! TCP proxies in front of each node's cluster listener, able to cut a node off from all others or to
//! slow down every link to it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The loopback IP node `i` makes its outgoing cluster connections from.
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8))
}

fn node_of(ip: IpAddr) -> Option<usize> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] >= 10 => {
            Some((v4.octets()[3] - 10) as usize)
        }
        _ => None,
    }
}

/// Which nodes are cut off; shared by all proxies of a cluster.
#[derive(Debug)]
pub struct Partition {
    cut: Mutex<HashSet<usize>>,
    /// Latency added to every chunk of bytes sent to (and answered by) a node, by node.
    slow: Mutex<HashMap<usize, Duration>>,
    changed: watch::Sender<u64>,
}

impl Default for Partition {
    fn default() -> Self {
        Partition {
            cut: Mutex::new(HashSet::new()),
            slow: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl Partition {
    /// Cuts node `i` off: every link to or from it drops, new ones are refused.
    pub fn cut(&self, i: usize) {
        self.cut.lock().expect("lock").insert(i);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Restores node `i`'s links.
    pub fn heal(&self, i: usize) {
        self.cut.lock().expect("lock").remove(&i);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Delays every chunk of bytes on links *to* node `i` (requests to it and its answers) by `delay`;
    /// its own calls to others stay fast. Open links to it are dropped (their callers reconnect).
    pub fn slow(&self, i: usize, delay: Duration) {
        self.slow.lock().expect("lock").insert(i, delay);
        self.changed.send_modify(|g| *g += 1);
    }

    fn delay(&self, i: usize) -> Option<Duration> {
        self.slow.lock().expect("lock").get(&i).copied()
    }

    fn allows(&self, target: usize, source: Option<usize>) -> bool {
        let cut = self.cut.lock().expect("lock");
        !cut.contains(&target) && source.is_none_or(|s| !cut.contains(&s))
    }
}

/// Starts a proxy for node `index` forwarding to `target`; returns its address.
pub async fn start(index: usize, target: SocketAddr, partition: Arc<Partition>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, peer)) = listener.accept().await else { continue };
            let source = node_of(peer.ip());
            if !partition.allows(index, source) {
                drop(inbound);
                continue;
            }
            let partition = partition.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                // Without this, Nagle plus delayed ACKs add ~40 ms to every small Raft message.
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let mut changed = partition.changed.subscribe();
                let delay = partition.delay(index);
                let copy = async {
                    match delay {
                        None => {
                            let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        Some(delay) => {
                            let (mut in_read, mut in_write) = inbound.split();
                            let (mut out_read, mut out_write) = outbound.split();
                            tokio::select! {
                                _ = copy_slowly(&mut in_read, &mut out_write, delay) => {}
                                _ = copy_slowly(&mut out_read, &mut in_write, delay) => {}
                            }
                        }
                    }
                };
                tokio::pin!(copy);
                loop {
                    tokio::select! {
                        _ = &mut copy => return,
                        r = changed.changed() => {
                            if r.is_err() || !partition.allows(index, source) || partition.delay(index) != delay {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Copies `from` to `to`, holding each chunk back by `delay` (a slow link, not a slow node).
async fn copy_slowly(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    delay: Duration,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tokio::time::sleep(delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
