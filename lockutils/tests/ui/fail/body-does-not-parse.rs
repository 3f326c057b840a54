use lockutils::synchronized;

// The body has a syntax error: that error is the only one reported. The
// function still exists (callers compile), and the attribute's own mistakes
// are still reported.
#[synchronized("inventory")]
pub fn reserve(n: u32) -> u32 {
    let x = ;
    n + x
}

#[synchronized("inventory", extrnal)]
pub fn release(n: u32) -> u32 {
    let total = n + ;
    total
}

fn main() {
    let _ = reserve(1);
    let _ = release(1);
}
