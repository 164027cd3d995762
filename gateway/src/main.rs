//! `callway-gateway`: the edge gateway binary.
//!
//! The sans-IO core (`callway_gateway::core`) is built and tested; the I/O shell (io_uring /
//! epoll runtimes, TLS, listeners, the call state machine that drives the core) is the next
//! piece of work. Until it lands this binary refuses to start rather than pretend to serve.

fn main() {
    eprintln!(
        "callway-gateway: the network shell is not built yet — only the sans-IO core exists \
         (see README.md, \"Status\"). Nothing is listening; exiting."
    );
    std::process::exit(2);
}
