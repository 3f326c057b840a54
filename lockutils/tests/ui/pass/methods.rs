//! Every receiver, trait impls, associated functions.
use std::sync::Arc;

use lockutils::synchronized;

struct Account {
    balance: u64,
}

impl Account {
    #[synchronized("account")]
    fn by_ref(&self) -> u64 {
        self.balance
    }

    #[synchronized("account")]
    fn by_mut(&mut self) -> &mut u64 {
        &mut self.balance
    }

    #[synchronized("account")]
    fn by_value(self) -> u64 {
        self.balance
    }

    #[synchronized("account")]
    fn by_arc(self: Arc<Self>) -> u64 {
        self.balance
    }

    #[synchronized("account-{self_id}")]
    fn new(self_id: u32) -> Self {
        Account { balance: u64::from(self_id) }
    }

    #[synchronized(name = self.balance.to_string())]
    fn named_by_field(&self) -> Self {
        Self { balance: self.balance }
    }
}

trait Store {
    fn put(&mut self, v: u64) -> Option<u64>;
}

impl Store for Account {
    #[synchronized("store")]
    fn put(&mut self, v: u64) -> Option<u64> {
        let old = self.balance.checked_add(0)?;
        self.balance = v;
        Some(old)
    }
}

fn main() {
    let mut a = Account::new(1);
    *a.by_mut() += 1;
    assert_eq!(a.by_ref(), 2);
    assert_eq!(a.put(5), Some(2));
    assert_eq!(a.named_by_field().by_value(), 5);
    assert_eq!(Arc::new(a).by_arc(), 5);
}
