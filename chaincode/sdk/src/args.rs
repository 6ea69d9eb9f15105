//! How transaction arguments and results cross the boundary (ABI.md,
//! "Arguments and results"), and the [`Handler`] trait that turns an
//! ordinary Rust function into a transaction.
//!
//! Arguments are Fabric's: positional byte strings. A `String` or `Vec<u8>`
//! parameter takes the bytes as they are (so `submitTransaction("put", "k",
//! "v")` from a Fabric Gateway client just works); integers and `bool` are
//! their decimal/`true`/`false` text; [`Json<T>`] parses the bytes as JSON.
//! Results mirror this.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Context, Error};

/// A JSON-encoded argument or result: `Json<Asset>` as a parameter parses
/// the argument's bytes as JSON; as a result it serializes the value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

/// A type a transaction function can take as a parameter.
pub trait Arg: Sized {
    /// Decodes one positional argument.
    fn from_arg(bytes: Vec<u8>) -> Result<Self, Error>;
}

/// A type a transaction function can return (inside `Result<_, Error>`);
/// its bytes become the response payload.
pub trait Output {
    /// Encodes the result as the response payload.
    fn into_payload(self) -> Result<Vec<u8>, Error>;
}

impl Arg for String {
    fn from_arg(bytes: Vec<u8>) -> Result<Self, Error> {
        Ok(String::from_utf8(bytes)?)
    }
}

impl Arg for Vec<u8> {
    fn from_arg(bytes: Vec<u8>) -> Result<Self, Error> {
        Ok(bytes)
    }
}

impl Arg for bool {
    fn from_arg(bytes: Vec<u8>) -> Result<Self, Error> {
        match bytes.as_slice() {
            b"true" => Ok(true),
            b"false" => Ok(false),
            _ => Err(Error::new("expected `true` or `false`")),
        }
    }
}

impl<T: DeserializeOwned> Arg for Json<T> {
    fn from_arg(bytes: Vec<u8>) -> Result<Self, Error> {
        Ok(Json(serde_json::from_slice(&bytes)?))
    }
}

impl Output for () {
    fn into_payload(self) -> Result<Vec<u8>, Error> {
        Ok(Vec::new())
    }
}

impl Output for String {
    fn into_payload(self) -> Result<Vec<u8>, Error> {
        Ok(self.into_bytes())
    }
}

impl Output for Vec<u8> {
    fn into_payload(self) -> Result<Vec<u8>, Error> {
        Ok(self)
    }
}

impl Output for bool {
    fn into_payload(self) -> Result<Vec<u8>, Error> {
        Ok(if self {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        })
    }
}

impl<T: Serialize> Output for Json<T> {
    fn into_payload(self) -> Result<Vec<u8>, Error> {
        Ok(serde_json::to_vec(&self.0)?)
    }
}

macro_rules! integer_args {
    ($($int:ty),*) => {$(
        impl Arg for $int {
            fn from_arg(bytes: Vec<u8>) -> Result<Self, Error> {
                Ok(String::from_utf8(bytes)?.parse::<$int>()?)
            }
        }
        impl Output for $int {
            fn into_payload(self) -> Result<Vec<u8>, Error> {
                Ok(self.to_string().into_bytes())
            }
        }
    )*};
}
integer_args!(u8, u16, u32, u64, i8, i16, i32, i64);

/// A transaction function: implemented for every
/// `fn(&mut Context, A1, …, An) -> Result<R, Error>` with up to 8 [`Arg`]
/// parameters and an [`Output`] result. `M` only tells the impls apart.
pub trait Handler<M> {
    /// Decodes `args`, calls the function and encodes its result.
    fn call(&self, ctx: &mut Context, args: Vec<Vec<u8>>) -> Result<Vec<u8>, Error>;
}

macro_rules! handlers {
    ($($n:literal => ($($A:ident $a:ident),*);)*) => {$(
        impl<F, R, $($A,)*> Handler<(R, $($A,)*)> for F
        where
            F: Fn(&mut Context, $($A),*) -> Result<R, Error>,
            R: Output,
            $($A: Arg,)*
        {
            #[allow(unused_variables, unused_mut, unused_assignments)]
            fn call(&self, ctx: &mut Context, args: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
                let got = args.len();
                let [$($a),*]: [Vec<u8>; $n] = args.try_into().map_err(|_| {
                    Error::new(format!("expected {} argument(s), got {got}", $n))
                })?;
                let mut position = 0;
                $(
                    position += 1;
                    let $a = $A::from_arg($a)
                        .map_err(|e| e.context(format_args!("argument {position}")))?;
                )*
                self(ctx, $($a),*)?.into_payload()
            }
        }
    )*};
}

handlers! {
    0 => ();
    1 => (A1 a1);
    2 => (A1 a1, A2 a2);
    3 => (A1 a1, A2 a2, A3 a3);
    4 => (A1 a1, A2 a2, A3 a3, A4 a4);
    5 => (A1 a1, A2 a2, A3 a3, A4 a4, A5 a5);
    6 => (A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6);
    7 => (A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7);
    8 => (A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<M>(h: impl Handler<M>, args: &[&[u8]]) -> Result<Vec<u8>, Error> {
        h.call(
            &mut Context::new(),
            args.iter().map(|a| a.to_vec()).collect(),
        )
    }

    fn concat(_: &mut Context, a: String, n: u32, flag: bool) -> Result<String, Error> {
        Ok(format!("{a}-{n}-{flag}"))
    }

    fn sum(_: &mut Context, v: Json<Vec<u64>>) -> Result<Json<u64>, Error> {
        Ok(Json(v.0.iter().sum()))
    }

    fn nothing(_: &mut Context) -> Result<(), Error> {
        Ok(())
    }

    fn refuse(_: &mut Context, _: Vec<u8>) -> Result<i64, Error> {
        Err(Error::new("no"))
    }

    #[test]
    fn positional_arguments_are_decoded_by_type() {
        assert_eq!(call(concat, &[b"k", b"42", b"true"]).unwrap(), b"k-42-true");
        assert_eq!(call(sum, &[b"[1,2,3]"]).unwrap(), b"6");
        assert_eq!(call(nothing, &[]).unwrap(), b"");
    }

    #[test]
    fn argument_errors_name_the_position() {
        let err = call(concat, &[b"k", b"x", b"true"]).unwrap_err();
        assert!(
            err.message().starts_with("argument 2: not an integer"),
            "{err}"
        );
        let err = call(concat, &[b"k", b"1", b"yes"]).unwrap_err();
        assert!(err.message().starts_with("argument 3:"), "{err}");
        let err = call(sum, &[b"{"]).unwrap_err();
        assert!(err.message().starts_with("argument 1: JSON"), "{err}");
        let err = call(concat, &[b"\xff", b"1", b"true"]).unwrap_err();
        assert!(err.message().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn wrong_argument_count_is_an_error() {
        let err = call(concat, &[b"k"]).unwrap_err();
        assert_eq!(err.message(), "expected 3 argument(s), got 1");
        assert!(call(nothing, &[b"x"]).is_err());
    }

    #[test]
    fn function_errors_pass_through() {
        assert_eq!(call(refuse, &[b""]).unwrap_err().message(), "no");
    }
}
