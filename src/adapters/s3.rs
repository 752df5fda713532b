//! [`ObjectStore`] over outbound HTTP: `core::s3` presigns each request and
//! says what its answer means; this sends it. GET hands back the response so
//! its body can be streamed to the client without entering memory.

use spin_sdk::http::IncomingResponse;

use super::env::WasiEnv;
use super::http;
use crate::core::config::S3Config;
use crate::core::http::timing::{Kind, Timings};
use crate::core::ports::{Env, ObjectStore, StoredObject};
use crate::core::s3::{self, Signer};
use crate::core::Error;

pub struct S3<'t> {
    signer: Signer,
    timings: &'t Timings,
}

impl<'t> S3<'t> {
    pub fn new(config: &S3Config, timings: &'t Timings) -> Result<S3<'t>, Error> {
        Ok(S3 { signer: Signer::new(config)?, timings })
    }
}

impl ObjectStore for S3<'_> {
    type Body = IncomingResponse;

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let spec = self.signer.put(key, content_type, bytes, WasiEnv.now_unix());
        let answer = self.timings.measure_async(Kind::S3, http::send_buffered(spec)).await;
        s3::put_result(answer.map_err(|e| s3::unreachable("PUT", e))?.status)
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject<IncomingResponse>>, Error> {
        let spec = self.signer.get(key, WasiEnv.now_unix());
        let response = self.timings.measure_async(Kind::S3, http::send_streaming(spec)).await;
        let response = response.map_err(|e| s3::unreachable("GET", e))?;
        let size = s3::get_result(response.status(), http::header(&response, "content-length").as_deref())?;
        Ok(size.map(|size| StoredObject { size, body: response }))
    }

    async fn get_bytes(&self, key: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, Error> {
        let spec = self.signer.get(key, WasiEnv.now_unix());
        let answer = self.timings.measure_async(Kind::S3, http::send_capped(spec, max_bytes)).await;
        let answer = answer.map_err(|e| s3::unreachable("GET", e))?;
        let size = answer.body.len().to_string();
        Ok(s3::get_result(answer.status, Some(&size))?.map(|_| answer.body))
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let spec = self.signer.delete(key, WasiEnv.now_unix());
        let answer = self.timings.measure_async(Kind::S3, http::send_buffered(spec)).await;
        s3::delete_result(answer.map_err(|e| s3::unreachable("DELETE", e))?.status)
    }
}
