//! The built-in `svcnet/echoserver` image (being written).
