//! gcr-net (being written).
