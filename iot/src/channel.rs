//! [`Channel`]: the running state and the peaks of the readings' Merkle
//! mountain range — everything a device must keep (a few hundred bytes,
//! whatever the number of readings). The gateway keeps the same and checks
//! each update the device proposes against it ([`Channel::expect`]).

use qcss_anchor::mmr::Peaks;

use crate::reading::MMR;
use crate::wire::MAX_UPDATE_READINGS;
use crate::{ChannelId, ChannelParams, IotError, Reading, State};

/// One side's view of a channel.
#[derive(Clone, Debug)]
pub struct Channel {
    params: ChannelParams,
    id: ChannelId,
    state: State,
    peaks: Peaks,
}

impl Channel {
    /// A channel at its opening state (seq 0, no readings).
    pub fn open(params: ChannelParams) -> Result<Self, IotError> {
        params.check()?;
        let id = params.id();
        Ok(Self {
            state: State::open(id),
            params,
            id,
            peaks: Peaks::default(),
        })
    }

    /// Its parameters.
    pub fn params(&self) -> &ChannelParams {
        &self.params
    }

    /// Its id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The latest state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The range's peaks (at most 64 hashes).
    pub fn peaks(&self) -> &Peaks {
        &self.peaks
    }

    /// Applies one update: `readings` (numbered on from the count so far,
    /// times never going back, values fitting the schema) and, if
    /// `is_final`, closes the channel to further updates. Returns the new
    /// state (seq + 1). Nothing changes if anything is refused.
    pub fn apply(&mut self, readings: &[Reading], is_final: bool) -> Result<&State, IotError> {
        if self.state.is_final {
            return Err(IotError::Final(self.id));
        }
        if readings.len() > MAX_UPDATE_READINGS {
            return Err(IotError::TooLarge {
                what: "an update's reading count",
                got: readings.len() as u64,
                limit: MAX_UPDATE_READINGS as u64,
            });
        }
        if readings.is_empty() && !is_final {
            return Err(IotError::BadReading {
                seq: self.state.count,
                reason: "an update carries readings unless it is the final one".into(),
            });
        }
        let mut next = self.state.clone();
        let mut peaks = self.peaks.clone();
        for r in readings {
            r.check(&self.params.schema)?;
            if r.seq != next.count {
                return Err(IotError::BadReading {
                    seq: r.seq,
                    reason: format!("expected reading {}", next.count),
                });
            }
            if r.time < next.last_time {
                return Err(IotError::BadReading {
                    seq: r.seq,
                    reason: format!(
                        "time {} is before the previous reading's {}",
                        r.time, next.last_time
                    ),
                });
            }
            if next.min.is_empty() {
                next.min = r.values.clone();
                next.max = r.values.clone();
            } else {
                for (i, v) in r.values.iter().enumerate() {
                    next.min[i] = next.min[i].min(*v);
                    next.max[i] = next.max[i].max(*v);
                }
            }
            peaks.append(&MMR, r.leaf(&self.id));
            next.count += 1;
            next.last_time = r.time;
        }
        next.seq += 1;
        next.root = peaks.root(&MMR);
        next.is_final = is_final;
        self.state = next;
        self.peaks = peaks;
        Ok(&self.state)
    }

    /// The gateway's check: applies the update and accepts it only if it
    /// gives exactly the state the device `proposed`.
    pub fn expect(&mut self, readings: &[Reading], proposed: &State) -> Result<&State, IotError> {
        let mut trial = self.clone();
        trial.apply(readings, proposed.is_final)?;
        let got = &trial.state;
        let mismatch = |reason: &str| IotError::StateMismatch {
            seq: proposed.seq,
            reason: reason.into(),
        };
        if got.channel != proposed.channel {
            return Err(IotError::WrongChannel {
                what: "proposed state",
                want: got.channel,
                got: proposed.channel,
            });
        }
        if got.seq != proposed.seq {
            return Err(mismatch("seq"));
        }
        if got.count != proposed.count {
            return Err(mismatch("count"));
        }
        if got.root != proposed.root {
            return Err(mismatch("root"));
        }
        if got.last_time != proposed.last_time {
            return Err(mismatch("last_time"));
        }
        if got.encode() != proposed.encode() {
            return Err(mismatch("min/max"));
        }
        *self = trial;
        Ok(&self.state)
    }
}
