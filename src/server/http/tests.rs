use super::*;

#[test]
fn eviction_picks_a_connection_that_never_sent_a_request_then_the_longest_waiting_and_never_a_busy_one(
) {
    let open = Open::default();
    let served_early = open.add();
    let busy = open.add();
    let silent = open.add();
    let served_late = open.add();
    for conn in [&served_early, &busy, &served_late] {
        conn.served.store(true, Ordering::Relaxed);
        conn.set_waiting(false);
    }
    served_early.set_waiting(true);
    served_late.set_waiting(true);

    let picked = |conn: &OpenConn| conn.evicted.load(Ordering::Relaxed);
    assert!(open.evict_one());
    assert!(
        picked(&silent),
        "the one that never sent a request goes first"
    );
    assert!(open.evict_one());
    assert!(picked(&served_early), "then the one waiting longest");
    assert!(open.evict_one());
    assert!(picked(&served_late));
    assert!(
        !open.evict_one(),
        "a connection in the middle of a request is never picked"
    );
    assert!(!picked(&busy));

    open.remove(&silent);
    assert_eq!(open.lock().len(), 3);
}
