//! Guessing the admin token gets slower with every wrong guess; the right token is
//! answered at once and returns to the view asked for (only a view, never a URL).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

use pakaura_tests::{ADMIN_TOKEN, Backend, on_both_databases, spawn_app};

use super::{no_redirects, post_login};

async fn wrong_tokens_wait_longer_each_time_and_the_right_one_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut waits = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let response = post_login(&app, "not-the-admin-token").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        waits.push(started.elapsed());
    }
    // 250 ms, 500 ms, 1 s: each at least its floor.
    assert!(waits[0] >= Duration::from_millis(250), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(500), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(1000), "{waits:?}");

    let response = no_redirects()
        .post(app.url("/console/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}&next=held"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console#held");

    // After a right token the next wrong one starts again from the first wait.
    let started = Instant::now();
    post_login(&app, "still-not-it").await;
    let again = started.elapsed();
    assert!(
        again < Duration::from_millis(900),
        "started again: {again:?}"
    );

    for next in ["https%3A%2F%2Fevil.example", "held%2F..%2Fx", ""] {
        let response = no_redirects()
            .post(app.url("/console/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("token={ADMIN_TOKEN}&next={next}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[LOCATION], "/console", "{next}");
    }
}

on_both_databases!(wrong_tokens_wait_longer_each_time_and_the_right_one_does_not);
