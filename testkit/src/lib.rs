//! Fixtures shared by the integration tests (`tests/integration`) and the
//! benchmark (`bench/`): a real Garage S3 server, a Gemini double, S3 and HTTP
//! clients, raw HTTP, and the documented URL signer. Everything listens on
//! 127.0.0.1 and is stopped when dropped.

pub mod browser;
pub mod double;
pub mod garage;
pub mod gemini;
pub mod http;
pub mod moderation;
pub mod nats;
pub mod openai;
pub mod port;
pub mod raw;
pub mod redis;
pub mod registry;
pub mod s3;
pub mod sign;
pub mod spin;
pub mod stream;
pub mod wash;
