//! Callway control plane (being built: see issue 5).
