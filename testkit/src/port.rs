//! Ports for servers the tests start that are told their port (Garage,
//! Redis, NATS, Spin, wash, chromedriver, the registry, Prometheus): a port
//! picked by binding port 0 and releasing it could be taken by anyone
//! before the server binds it. A [`Reserved`] port stays bound (never
//! listening) for as long as it lives, with `SO_REUSEADDR`: connections to
//! it are refused, the kernel hands it to nobody as an ephemeral port, a
//! bind without `SO_REUSEADDR` fails, and a server that binds with
//! `SO_REUSEADDR` (tokio's, Go's and Redis's listeners do) takes it and
//! listens on it. Keep the reservation as long as the server runs, and a
//! server stopped and started again (a test's "S3 went away") finds its port
//! still free.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// A loopback port held for a server (see the module's doc).
#[derive(Debug)]
pub struct Reserved {
    _socket: Socket,
    port: u16,
}

impl Reserved {
    pub fn new() -> Reserved {
        let socket = reusable().expect("a socket");
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind 127.0.0.1:0");
        let port = socket.local_addr().unwrap().as_socket().expect("an IP address").port();
        Reserved { _socket: socket, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A listener of our own on the reserved port (for as long as it
    /// lives; the port stays reserved after it is dropped).
    pub fn listen(&self) -> std::io::Result<TcpListener> {
        let socket = reusable()?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], self.port)).into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    }
}

impl Default for Reserved {
    fn default() -> Reserved {
        Reserved::new()
    }
}

fn reusable() -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    Ok(socket)
}
