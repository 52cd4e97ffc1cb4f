//! gcr-registry (being written).
