//! The agent's HTTP server: exec and logs (being written).
