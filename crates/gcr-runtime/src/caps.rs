//! Capabilities (being written).
