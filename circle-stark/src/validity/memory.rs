//! State access by offline memory checking over LogUp (`specs/batch-air.md` §4.1).
//!
//! Every access to a state leaf at time `t` *consumes* `State(key, old, t_prev)` and *yields*
//! `State(key, new, t)`, with `t_prev < t` proven by range-checking `t − t_prev − 1` below
//! 2^22 (a 16-bit limb and a 6-bit limb, the latter checked as `limb · 2^10 < 2^16`). An *init*
//! row yields `(key, v₀, 0)` once per touched key and a *final* row consumes `(key, v_f, t_f)`.
//! Since times strictly increase along every consume→yield edge, each key's accesses form one
//! chain from init to final in time order, so every read sees the last write. Binding init to
//! the pre-state root and final to the post-state root is the state-tree component's job.

use stwo_constraint_framework::{relation, EvalAtRow, RelationEntry};
#[cfg(test)]
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval};

use crate::field::M31;
use crate::validity::range::RangeRelations;
use crate::venue::state::LEAF_LIMBS;

relation!(StateRel, 11);

/// Bits of the time difference: times stay below 2^22 (2^18 operations × 16 access slots).
pub const TIME_BITS: u32 = 22;

/// Columns of an access row: `enabled, key_lo, key_hi, old[8], new[8], t_prev, t, d_lo, d_hi`.
pub const ACCESS_COLUMNS: usize = 3 + 2 * LEAF_LIMBS + 4;

/// An access component (stand-alone form, for the memory argument's own tests; the batch AIR's
/// operation rows carry the same columns and constraints).
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct AccessEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State relation challenges.
    pub state: StateRel,
    /// Range-check challenges.
    pub range: RangeRelations,
}

/// The cells of one access, in column order.
#[derive(Debug, Clone)]
pub struct AccessCells<F> {
    /// 1 for a real access, 0 for padding.
    pub enabled: F,
    /// Leaf index as two 16-bit limbs (low first).
    pub key: [F; 2],
    /// Value read.
    pub old: [F; LEAF_LIMBS],
    /// Value written.
    pub new: [F; LEAF_LIMBS],
    /// `[t_prev, t]`.
    pub times: [F; 2],
    /// `t − t_prev − 1` as a 16-bit and a 6-bit limb.
    pub diff: [F; 2],
}

impl<F: Clone> AccessCells<F> {
    /// Reads the cells from the next columns.
    pub fn read<E: EvalAtRow<F = F>>(eval: &mut E) -> Self {
        Self {
            enabled: eval.next_trace_mask(),
            key: [eval.next_trace_mask(), eval.next_trace_mask()],
            old: std::array::from_fn(|_| eval.next_trace_mask()),
            new: std::array::from_fn(|_| eval.next_trace_mask()),
            times: [eval.next_trace_mask(), eval.next_trace_mask()],
            diff: [eval.next_trace_mask(), eval.next_trace_mask()],
        }
    }
}

/// Adds the constraint and relation entries of one access.
pub fn eval_access<E: EvalAtRow>(
    eval: &mut E,
    state: &StateRel,
    range: &RangeRelations,
    cells: AccessCells<E::F>,
) {
    let AccessCells {
        enabled,
        key,
        old,
        new,
        times: [t_prev, t],
        diff: [d_lo, d_hi],
    } = cells;
    let one = E::F::from(M31::from_u32_unchecked(1));
    let two16 = M31::from_u32_unchecked(1 << 16);
    eval.add_constraint(
        enabled.clone() * (t.clone() - t_prev.clone() - one - d_lo.clone() - d_hi.clone() * two16),
    );
    let read: Vec<E::F> = key
        .iter()
        .cloned()
        .chain(old.iter().cloned())
        .chain([t_prev])
        .collect();
    let write: Vec<E::F> = key
        .iter()
        .cloned()
        .chain(new.iter().cloned())
        .chain([t])
        .collect();
    let e = E::EF::from(enabled);
    eval.add_to_relation(RelationEntry::new(state, -e.clone(), &read));
    eval.add_to_relation(RelationEntry::new(state, e.clone(), &write));
    eval.add_to_relation(RelationEntry::new(&range.range, -e.clone(), &[d_lo]));
    let shifted = d_hi * M31::from_u32_unchecked(1 << (32 - TIME_BITS));
    eval.add_to_relation(RelationEntry::new(&range.range, -e, &[shifted]));
}

#[cfg(test)]
impl FrameworkEval for AccessEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let cells = AccessCells::read(&mut eval);
        let e = cells.enabled.clone();
        eval.add_constraint(e.clone() * e.clone() - e);
        eval_access(&mut eval, &self.state, &self.range, cells);
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// Init (`sign = +1`: yields `(key, value, 0)`) or final (`sign = −1`: consumes
/// `(key, value, t)`) rows. Columns: `enabled, key_lo, key_hi, value[8], t`.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct BoundaryEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State relation challenges.
    pub state: StateRel,
    /// Init (true) or final (false).
    pub is_init: bool,
}

#[cfg(test)]
impl FrameworkEval for BoundaryEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        let values: Vec<E::F> = (0..2 + LEAF_LIMBS + 1)
            .map(|_| eval.next_trace_mask())
            .collect();
        eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());
        if self.is_init {
            // Initial values carry time 0.
            eval.add_constraint(values[2 + LEAF_LIMBS].clone());
        }
        let e = E::EF::from(enabled);
        let m = if self.is_init { e } else { -e };
        eval.add_to_relation(RelationEntry::new(&self.state, m, &values));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The access component.
#[cfg(test)]
pub type Access = FrameworkComponent<AccessEval>;
/// An init or final component.
#[cfg(test)]
pub type Boundary = FrameworkComponent<BoundaryEval>;

#[cfg(all(test, feature = "prover"))]
mod tests {
    use stwo::core::fields::qm31::SecureField;
    use stwo::prover::backend::simd::column::BaseColumn;
    use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::{LogupTraceGenerator, Relation, TraceLocationAllocator};

    use super::*;
    use crate::harness::{evaluations, prove_and_verify, Air, Evaluations};
    use crate::validity::range::{RangeTable, RangeTableEval, LOG_RANGE};

    type Value = [M31; LEAF_LIMBS];

    #[derive(Clone, Debug)]
    struct Op {
        key: u32,
        old: Value,
        new: Value,
        t_prev: u32,
        t: u32,
    }

    #[derive(Clone, Debug)]
    struct Log {
        init: Vec<(u32, Value)>,
        accesses: Vec<Op>,
        finals: Vec<(u32, Value, u32)>,
    }

    const KEYS: [u32; 4] = [5, (1 << 30) | 7, (1 << 31) | 3, 3 << 30];
    const ACCESS_LOG: u32 = 6;
    const BOUNDARY_LOG: u32 = 4;

    fn m(v: u32) -> M31 {
        M31::from_u32_unchecked(v)
    }

    /// 40 accesses to 4 keys at times 1..=40, each adding 1 + t to limb 0.
    fn honest() -> Log {
        let mut current: Vec<(Value, u32)> = KEYS
            .iter()
            .map(|&k| ([m(k & 0xffff); LEAF_LIMBS], 0))
            .collect();
        let init = KEYS
            .iter()
            .zip(&current)
            .map(|(&k, (v, _))| (k, *v))
            .collect();
        let mut accesses = Vec::new();
        for t in 1..=40u32 {
            let i = ((t * 7) % 4) as usize;
            let (old, t_prev) = current[i];
            let mut new = old;
            new[0] += m(1 + t);
            accesses.push(Op {
                key: KEYS[i],
                old,
                new,
                t_prev,
                t,
            });
            current[i] = (new, t);
        }
        let finals = KEYS
            .iter()
            .zip(&current)
            .map(|(&k, (v, t))| (k, *v, *t))
            .collect();
        Log {
            init,
            accesses,
            finals,
        }
    }

    type Cols = Vec<Vec<M31>>;

    /// `(access, init, final, range table)` columns.
    fn columns(log: &Log) -> (Cols, Cols, Cols, [Vec<M31>; 2]) {
        let key = |k: u32| [m(k & 0xffff), m(k >> 16)];
        let mut access = vec![vec![m(0); 1 << ACCESS_LOG]; ACCESS_COLUMNS];
        let mut uses = vec![0u32; 1 << LOG_RANGE];
        for (r, op) in log.accesses.iter().enumerate() {
            let d = m(op.t) - m(op.t_prev) - m(1);
            let (d_lo, d_hi) = (m(d.0 & 0xffff), m(d.0 >> 16));
            let mut row = vec![m(1)];
            row.extend(key(op.key));
            row.extend(op.old);
            row.extend(op.new);
            row.extend([m(op.t_prev), m(op.t), d_lo, d_hi]);
            for (c, v) in row.into_iter().enumerate() {
                access[c][r] = v;
            }
            // Count only limbs that can be in the table; others cannot be matched anyway.
            for limb in [d_lo.0, d_hi.0 << (32 - TIME_BITS)] {
                if limb < 1 << LOG_RANGE {
                    uses[limb as usize] += 1;
                }
            }
        }
        let boundary = |rows: Vec<(u32, Value, u32)>| {
            let mut cols = vec![vec![m(0); 1 << BOUNDARY_LOG]; 3 + LEAF_LIMBS + 1];
            for (r, (k, v, t)) in rows.into_iter().enumerate() {
                let mut row = vec![m(1)];
                row.extend(key(k));
                row.extend(v);
                row.push(m(t));
                for (c, x) in row.into_iter().enumerate() {
                    cols[c][r] = x;
                }
            }
            cols
        };
        let init = boundary(log.init.iter().map(|&(k, v)| (k, v, 0)).collect());
        let finals = boundary(log.finals.clone());
        // Padding rows of the access component consume nothing but still need d = 0 limbs: t = t_prev + 1.
        for cell in access[3 + 2 * LEAF_LIMBS + 1]
            .iter_mut()
            .skip(log.accesses.len())
        {
            *cell = m(1);
        }
        let table = [
            (0..1u32 << LOG_RANGE).map(m).collect(),
            uses.into_iter().map(m).collect(),
        ];
        (access, init, finals, table)
    }

    fn packed(col: &[M31], vr: usize) -> PackedBaseField {
        col.iter().copied().collect::<BaseColumn>().data[vr]
    }

    fn frac_column(
        log_rows: u32,
        gen: &mut LogupTraceGenerator,
        fracs: impl Fn(usize) -> (PackedSecureField, PackedSecureField),
    ) {
        let mut col = gen.new_col();
        for vr in 0..1 << (log_rows - LOG_N_LANES) {
            let (n, d) = fracs(vr);
            col.write_frac(vr, n, d);
        }
        col.finalize_col();
    }

    #[derive(Clone)]
    struct Rels {
        state: StateRel,
        range: RangeRelations,
    }

    fn run(log: &Log) -> Result<(), String> {
        let (access, init, finals, table) = columns(log);
        let (a, i, f, tb) = (&access, &init, &finals, &table);
        prove_and_verify(Air {
            main: vec![
                evaluations(LOG_RANGE, &table),
                evaluations(ACCESS_LOG, &access),
                evaluations(BOUNDARY_LOG, &init),
                evaluations(BOUNDARY_LOG, &finals),
            ],
            max_log_rows: LOG_RANGE,
            draw: |ch| Rels {
                state: StateRel::draw(ch),
                range: RangeRelations::draw(ch),
            },
            interaction: move |rel: &Rels| -> Vec<(Evaluations, SecureField)> {
                let mut t = LogupTraceGenerator::new(LOG_RANGE);
                frac_column(LOG_RANGE, &mut t, |vr| {
                    let v = packed(&tb[0], vr);
                    let (dr, dt): (PackedSecureField, PackedSecureField) =
                        (rel.range.range.combine(&[v]), rel.range.table.combine(&[v]));
                    (
                        PackedSecureField::from(packed(&tb[1], vr)) * dt - dr,
                        dr * dt,
                    )
                });
                let mut g = LogupTraceGenerator::new(ACCESS_LOG);
                let e = |vr| PackedSecureField::from(packed(&a[0], vr));
                let entry = |vr: usize,
                             value_cols: std::ops::Range<usize>,
                             time_col: usize|
                 -> PackedSecureField {
                    let mut v: Vec<PackedBaseField> = (1..3).map(|c| packed(&a[c], vr)).collect();
                    v.extend(value_cols.map(|c| packed(&a[c], vr)));
                    v.push(packed(&a[time_col], vr));
                    rel.state.combine(&v)
                };
                let base = 3 + 2 * LEAF_LIMBS;
                frac_column(ACCESS_LOG, &mut g, |vr| {
                    let (dr, dw) = (
                        entry(vr, 3..3 + LEAF_LIMBS, base),
                        entry(vr, 3 + LEAF_LIMBS..base, base + 1),
                    );
                    (e(vr) * (dr - dw), dr * dw)
                });
                frac_column(ACCESS_LOG, &mut g, |vr| {
                    let lo: PackedSecureField =
                        rel.range.range.combine(&[packed(&a[base + 2], vr)]);
                    let shifted = packed(&a[base + 3], vr)
                        * PackedBaseField::broadcast(m(1 << (32 - TIME_BITS)));
                    let hi: PackedSecureField = rel.range.range.combine(&[shifted]);
                    (-(e(vr) * (lo + hi)), lo * hi)
                });
                let boundary = |cols: &Vec<Vec<M31>>, sign: bool| {
                    let mut g = LogupTraceGenerator::new(BOUNDARY_LOG);
                    frac_column(BOUNDARY_LOG, &mut g, |vr| {
                        let v: Vec<PackedBaseField> =
                            (1..cols.len()).map(|c| packed(&cols[c], vr)).collect();
                        let n = PackedSecureField::from(packed(&cols[0], vr));
                        (if sign { n } else { -n }, rel.state.combine(&v))
                    });
                    g.finalize_last()
                };
                vec![
                    t.finalize_last(),
                    g.finalize_last(),
                    boundary(i, true),
                    boundary(f, false),
                ]
            },
            components: |rel: &Rels, sums: &[SecureField], alloc: &mut TraceLocationAllocator| {
                vec![
                    Box::new(RangeTable::new(
                        alloc,
                        RangeTableEval {
                            relations: rel.range.clone(),
                        },
                        sums[0],
                    )) as Box<_>,
                    Box::new(Access::new(
                        alloc,
                        AccessEval {
                            log_rows: ACCESS_LOG,
                            state: rel.state.clone(),
                            range: rel.range.clone(),
                        },
                        sums[1],
                    )),
                    Box::new(Boundary::new(
                        alloc,
                        BoundaryEval {
                            log_rows: BOUNDARY_LOG,
                            state: rel.state.clone(),
                            is_init: true,
                        },
                        sums[2],
                    )),
                    Box::new(Boundary::new(
                        alloc,
                        BoundaryEval {
                            log_rows: BOUNDARY_LOG,
                            state: rel.state.clone(),
                            is_init: false,
                        },
                        sums[3],
                    )),
                ]
            },
            expected_total: |rel: &Rels| rel.range.expected_component_sum(),
        })
    }

    #[test]
    fn honest_access_log_verifies() {
        run(&honest()).unwrap();
    }

    #[test]
    fn stale_read_is_rejected() {
        let mut log = honest();
        // Access 20 reads its key's initial value instead of the last write.
        let key = log.accesses[20].key;
        log.accesses[20].old = log.init.iter().find(|(k, _)| *k == key).unwrap().1;
        assert_eq!(run(&log).unwrap_err(), "logup total");
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        // Memory checking constrains reads, not writes (what a write may be is the operation
        // rows' job): a read of a value nobody wrote cannot be matched.
        let mut log = honest();
        log.accesses[9].old[3] += m(1_000_000);
        assert_eq!(run(&log).unwrap_err(), "logup total");
    }

    #[test]
    fn final_value_other_than_the_last_write_is_rejected() {
        let mut log = honest();
        log.finals[2].1[0] += m(1);
        assert_eq!(run(&log).unwrap_err(), "logup total");
    }

    #[test]
    fn dropped_access_is_rejected() {
        let mut log = honest();
        log.accesses.remove(17);
        assert_eq!(run(&log).unwrap_err(), "logup total");
    }

    #[test]
    fn accesses_reordered_against_time_are_rejected() {
        // Two accesses of one key, a at t_a < b at t_b, chained as init → b → a → final: the
        // state relation balances, but a's time difference t_a − t_b − 1 is negative and its
        // limbs cannot pass the range check.
        let mut log = honest();
        let key = KEYS[0];
        let idx: Vec<usize> = log
            .accesses
            .iter()
            .enumerate()
            .filter(|(_, o)| o.key == key)
            .map(|(i, _)| i)
            .collect();
        let (ia, ib) = (idx[0], idx[1]);
        let v0 = log.init.iter().find(|(k, _)| *k == key).unwrap().1;
        let (ta, tb) = (log.accesses[ia].t, log.accesses[ib].t);
        let (mut va, mut vb) = (v0, v0);
        vb[0] += m(11);
        va[0] += m(22);
        log.accesses[ib] = Op {
            key,
            old: v0,
            new: vb,
            t_prev: 0,
            t: tb,
        };
        log.accesses[ia] = Op {
            key,
            old: vb,
            new: va,
            t_prev: tb,
            t: ta,
        };
        // Later accesses of the key now follow a's write.
        let mut last = (va, ta);
        for i in idx[2..].iter().copied() {
            let op = &mut log.accesses[i];
            op.old = last.0;
            op.t_prev = last.1;
            op.new = op.old;
            op.new[0] += m(1);
            last = (op.new, op.t);
        }
        let f = log.finals.iter_mut().find(|(k, _, _)| *k == key).unwrap();
        *f = (key, last.0, last.1);
        assert_eq!(run(&log).unwrap_err(), "logup total");
    }
}
