//! Registry pull/push in the engine (being written).
