//! Randomness and time for the handlers (WASI random / clocks through std).

pub fn bytes64() -> [u8; 64] {
    let mut buf = [0u8; 64];
    getrandom::fill(&mut buf).expect("the host provides randomness");
    buf
}

pub fn u32() -> u32 {
    let mut buf = [0u8; 4];
    getrandom::fill(&mut buf).expect("the host provides randomness");
    u32::from_le_bytes(buf)
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
