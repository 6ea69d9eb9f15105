//! The canonical byte encoding's two halves: fixed-width little-endian
//! integers, `f64` as its IEEE-754 bits, strings as a `u16` length and
//! UTF-8, options as a `0`/`1` tag. A reader refuses trailing bytes, so
//! every value has exactly one encoding.

use crate::IotError;

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    /// Strings are checked to fit a `u16` by whoever built the value.
    pub(crate) fn str(&mut self, v: &str) {
        self.u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
        self.0.extend_from_slice(v.as_bytes());
    }
    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.f64(x);
            }
        }
    }
}

pub(crate) struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self { what, bytes }
    }
    pub(crate) fn err(&self, reason: impl Into<String>) -> IotError {
        IotError::Malformed {
            what: self.what,
            reason: reason.into(),
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], IotError> {
        if self.bytes.len() < n {
            return Err(self.err(format!(
                "ends early: {} bytes left, {n} needed",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], IotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, IotError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, IotError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, IotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, IotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, IotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn hash(&mut self) -> Result<[u8; 32], IotError> {
        self.array()
    }
    pub(crate) fn sig(&mut self) -> Result<[u8; 64], IotError> {
        self.array()
    }
    /// A finite `f64` (NaN and infinities have no place in a reading or a bound).
    pub(crate) fn f64(&mut self) -> Result<f64, IotError> {
        let v = f64::from_bits(u64::from_le_bytes(self.array()?));
        if !v.is_finite() {
            return Err(self.err("a value is not a finite number"));
        }
        Ok(v)
    }
    pub(crate) fn bool(&mut self) -> Result<bool, IotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("flag byte {b} is neither 0 nor 1"))),
        }
    }
    pub(crate) fn str(&mut self, max: usize) -> Result<String, IotError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(self.err(format!("a string of {n} bytes, over {max}")));
        }
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("a string is not UTF-8"))
    }
    pub(crate) fn opt_f64(&mut self) -> Result<Option<f64>, IotError> {
        if self.bool()? {
            Ok(Some(self.f64()?))
        } else {
            Ok(None)
        }
    }
    pub(crate) fn finish(self) -> Result<(), IotError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}
