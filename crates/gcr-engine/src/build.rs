//! `gcr build` in the engine (being written).
