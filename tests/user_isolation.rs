//! Property: a response stored for one user is never served to another.

mod support;

use cachet::UserId;
use proptest::prelude::*;
use std::time::Duration;
use support::{request, App};

#[derive(Debug, Clone)]
enum User {
    Anonymous,
    Token(u8),
    Extension(u8),
    /// Both: the extension wins, as the identity's first source.
    Both(u8, u8),
}

impl User {
    /// What the origin echoes for this user.
    fn echoed(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".into(),
            Self::Token(n) => format!("Bearer t{n}"),
            Self::Extension(n) | Self::Both(n, _) => format!("ext:u{n}"),
        }
    }
}

fn user() -> impl Strategy<Value = User> {
    prop_oneof![
        Just(User::Anonymous),
        (0u8..4).prop_map(User::Token),
        (0u8..4).prop_map(User::Extension),
        (0u8..4, 0u8..4).prop_map(|(e, t)| User::Both(e, t)),
    ]
}

#[derive(Debug, Clone)]
struct Step {
    user: User,
    head: bool,
    query: Option<u8>,
    advance_secs: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        user(),
        any::<bool>(),
        proptest::option::of(0u8..3),
        0u64..120,
    )
        .prop_map(|(user, head, query, advance_secs)| Step {
            user,
            head,
            query,
            advance_secs,
        })
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let app = App::new();
    for step in steps {
        app.clock.advance(Duration::from_secs(step.advance_secs));
        let uri = match step.query {
            Some(page) => format!("/api/me?page={page}"),
            None => "/api/me".to_owned(),
        };
        let method = if step.head { "HEAD" } else { "GET" };
        let mut req = match &step.user {
            User::Token(n) | User::Both(_, n) => {
                request(method, &uri, &[("authorization", &format!("Bearer t{n}"))])
            }
            _ => request(method, &uri, &[]),
        };
        if let User::Extension(n) | User::Both(n, _) = &step.user {
            req.extensions_mut().insert(UserId::new(format!("u{n}")));
        }
        let reply = app.send(req).await;
        prop_assert_eq!(reply.status, 200);
        if !step.head {
            let expected = format!("me={} #", step.user.echoed());
            prop_assert!(
                reply.body.starts_with(&expected),
                "{:?} got {:?}",
                step.user,
                reply.body
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_user_is_served_another_users_entry(steps in proptest::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(steps))?;
    }
}
