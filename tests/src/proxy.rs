//! TCP proxies in front of each node's cluster listener, able to cut a node off from all others.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::copy_bidirectional;
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
    changed: watch::Sender<u64>,
}

impl Default for Partition {
    fn default() -> Self {
        Partition { cut: Mutex::new(HashSet::new()), changed: watch::channel(0).0 }
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
                let copy = copy_bidirectional(&mut inbound, &mut outbound);
                tokio::pin!(copy);
                loop {
                    tokio::select! {
                        _ = &mut copy => return,
                        r = changed.changed() => {
                            if r.is_err() || !partition.allows(index, source) {
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
