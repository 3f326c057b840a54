use std::future::Future;
use lockutils::backend::FileBackend;
use lockutils::synchronized;

#[synchronized("by-url", backend = "file:///tmp/lockutils-ui-backend")]
fn by_url() -> u32 {
    1
}

#[synchronized("by-env-url", backend = concat!("file://", "/tmp/lockutils-ui-backend"))]
fn by_const_expr() -> u32 {
    2
}

struct Service {
    url: String,
    files: FileBackend,
}

impl Service {
    #[synchronized("by-field-url", backend = &self.url)]
    fn by_field_url(&self) -> u32 {
        3
    }

    #[synchronized(name = format!("by-backend-{n}"), backend = &self.files, timeout = "1s")]
    async fn by_backend(&self, n: u32) -> Result<u32, lockutils::Error> {
        Ok(n)
    }
}

fn main() {
    let s = Service {
        url: "file:///tmp/lockutils-ui-backend".to_owned(),
        files: FileBackend::new("/tmp/lockutils-ui-backend"),
    };
    assert_eq!(by_url() + by_const_expr() + s.by_field_url(), 6);
    let f = s.by_backend(4);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            assert_eq!(v.unwrap(), 4);
            break;
        }
    }
}
