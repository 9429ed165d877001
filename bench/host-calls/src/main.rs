//! `count-host-calls IN OUT`: writes a copy of the proxy-wasm module IN that
//! counts, as Envoy counters, every call it makes to the host
//! (`host_calls.out.<import>`: each imported function, ABI and WASI alike)
//! and every callback the host makes into it (`host_calls.in.<export>`: each
//! exported `proxy_on_*` function but the buffer allocator, which is part of
//! the host call that asked for the buffer). `make bench` runs every filter
//! it measures through this once, so each row can say how many calls a
//! request costs, and which; the module is otherwise unchanged.
//!
//! The counts live in one global each and reach Envoy when a context is
//! deleted (`proxy_on_delete`), through the module's own or an added
//! `proxy_define_metric` / `proxy_increment_metric` import, uncounted. The
//! metric names are written to a page the copy grows its memory by, which
//! the module's allocator never owns.

use std::collections::{HashMap, HashSet};
use std::error::Error;

use walrus::ir::{BinaryOp, Call, Instr, InstrLocId, LoadKind, MemArg, StoreKind, UnaryOp, Value, VisitorMut};
use walrus::{
    ConstExpr, ExportItem, FunctionBuilder, FunctionId, GlobalId, InstrSeqBuilder, MemoryId, Module, ValType,
};

/// proxy-wasm's `MetricType::Counter`.
const COUNTER: i32 = 0;

/// A counted function: its metric's name and the global that counts it.
struct Count {
    metric: String,
    global: GlobalId,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        return Err("usage: count-host-calls IN.wasm OUT.wasm".into());
    };
    let mut module = Module::from_file(input)?;
    let memory = module
        .memories
        .iter()
        .next()
        .map(|m| m.id())
        .ok_or("the module has no memory")?;
    let define = import(&mut module, "proxy_define_metric", &[ValType::I32; 4], &[ValType::I32]);
    let increment = import(
        &mut module,
        "proxy_increment_metric",
        &[ValType::I32, ValType::I64],
        &[ValType::I32],
    );
    let mut counts = Vec::new();
    let mut count = |module: &mut Module, metric: String| {
        let global = module
            .globals
            .add_local(ValType::I64, true, false, ConstExpr::Value(Value::I64(0)));
        counts.push(Count { metric, global });
        global
    };

    // Every call of an import goes through a wrapper that counts it (the
    // reporting imports' own calls below stay direct, uncounted).
    let imports: Vec<(FunctionId, String)> = module
        .imports
        .iter()
        .filter_map(|i| match i.kind {
            walrus::ImportKind::Function(f) => Some((f, i.name.clone())),
            _ => None,
        })
        .collect();
    let mut wrappers = HashMap::new();
    for (import, name) in imports {
        let global = count(&mut module, format!("host_calls.out.{name}"));
        wrappers.insert(import, counting_wrapper(&mut module, import, global, None));
    }
    let added: HashSet<FunctionId> = wrappers.values().copied().collect();
    for (id, func) in module.funcs.iter_local_mut() {
        if !added.contains(&id) {
            let entry = func.entry_block();
            walrus::ir::dfs_pre_order_mut(&mut Redirect(&wrappers), func, entry);
        }
    }

    // Every callback is counted on entry; a context's deletion reports.
    let callbacks: Vec<(walrus::ExportId, FunctionId, String)> = module
        .exports
        .iter()
        .filter_map(|export| match export.item {
            ExportItem::Function(f)
                if export.name.starts_with("proxy_on_") && export.name != "proxy_on_memory_allocate" =>
            {
                Some((export.id(), f, export.name.clone()))
            }
            _ => None,
        })
        .collect();
    let globals: Vec<_> = callbacks
        .iter()
        .map(|(_, _, name)| count(&mut module, format!("host_calls.in.{name}")))
        .collect();
    let report = report_function(&mut module, memory, &counts, define, increment);
    for ((export, func, name), global) in callbacks.into_iter().zip(globals) {
        let after = (name == "proxy_on_delete").then_some(report);
        let wrapper = counting_wrapper(&mut module, func, global, after);
        module.exports.get_mut(export).item = ExportItem::Function(wrapper);
    }
    module.emit_wasm_file(output)?;
    Ok(())
}

/// The module's import `env.NAME`, added with the given type if it has none.
fn import(module: &mut Module, name: &str, params: &[ValType], results: &[ValType]) -> FunctionId {
    if let Ok(id) = module.imports.get_func("env", name) {
        return id;
    }
    let ty = module.types.add(params, results);
    module.add_import_func("env", name, ty).0
}

/// A function of `target`'s type that adds one to `count`, calls `target`
/// with its arguments, then `after` (if any), and returns what `target` did.
fn counting_wrapper(module: &mut Module, target: FunctionId, count: GlobalId, after: Option<FunctionId>) -> FunctionId {
    let ty = module.types.get(module.funcs.get(target).ty());
    let (params, results) = (ty.params().to_vec(), ty.results().to_vec());
    let args: Vec<_> = params.iter().map(|&p| module.locals.add(p)).collect();
    // Where the results wait while `after` runs.
    let kept: Vec<_> = match after {
        Some(_) => results.iter().map(|&r| module.locals.add(r)).collect(),
        None => Vec::new(),
    };
    let mut builder = FunctionBuilder::new(&mut module.types, &params, &results);
    let mut body = builder.func_body();
    add_one(&mut body, count);
    for &arg in &args {
        body.local_get(arg);
    }
    body.call(target);
    if let Some(after) = after {
        for &local in kept.iter().rev() {
            body.local_set(local);
        }
        body.call(after);
        for &local in &kept {
            body.local_get(local);
        }
    }
    builder.finish(args, &mut module.funcs)
}

fn add_one(body: &mut InstrSeqBuilder, count: GlobalId) {
    body.global_get(count)
        .i64_const(1)
        .binop(BinaryOp::I64Add)
        .global_set(count);
}

/// Defines a counter per counted function on its first call, then adds
/// each count to its counter and sets the counts back to zero.
fn report_function(
    module: &mut Module,
    memory: MemoryId,
    counts: &[Count],
    define: FunctionId,
    increment: FunctionId,
) -> FunctionId {
    let page = module
        .globals
        .add_local(ValType::I32, true, false, ConstExpr::Value(Value::I32(0)));
    let defined = module
        .globals
        .add_local(ValType::I32, true, false, ConstExpr::Value(Value::I32(0)));
    // The page: the metric ids (4 bytes each), then the names.
    let names_at = 4 * counts.len();
    let mut builder = FunctionBuilder::new(&mut module.types, &[], &[]);
    let mut body = builder.func_body();
    body.global_get(defined).unop(UnaryOp::I32Eqz).if_else(
        None,
        |then| {
            // memory.grow answers the old size in pages: the new page's start.
            then.i32_const(1)
                .memory_grow(memory)
                .i32_const(16)
                .binop(BinaryOp::I32Shl)
                .global_set(page);
            let mut at = names_at;
            for (index, count) in counts.iter().enumerate() {
                for (offset, byte) in count.metric.bytes().enumerate() {
                    then.global_get(page).i32_const(i32::from(byte)).store(
                        memory,
                        StoreKind::I32_8 { atomic: false },
                        MemArg {
                            align: 1,
                            offset: (at + offset) as u64,
                        },
                    );
                }
                then.i32_const(COUNTER)
                    .global_get(page)
                    .i32_const(at as i32)
                    .binop(BinaryOp::I32Add)
                    .i32_const(count.metric.len() as i32)
                    .global_get(page)
                    .i32_const(4 * index as i32)
                    .binop(BinaryOp::I32Add)
                    .call(define)
                    .drop();
                at += count.metric.len();
            }
            then.i32_const(1).global_set(defined);
        },
        |_| {},
    );
    for (index, count) in counts.iter().enumerate() {
        body.global_get(count.global).unop(UnaryOp::I64Eqz).if_else(
            None,
            |_| {},
            |add| {
                add.global_get(page)
                    .load(
                        memory,
                        LoadKind::I32 { atomic: false },
                        MemArg {
                            align: 4,
                            offset: 4 * index as u64,
                        },
                    )
                    .global_get(count.global)
                    .call(increment)
                    .drop()
                    .i64_const(0)
                    .global_set(count.global);
            },
        );
    }
    builder.finish(vec![], &mut module.funcs)
}

/// Points every call of an import at its counting wrapper.
struct Redirect<'a>(&'a HashMap<FunctionId, FunctionId>);

impl VisitorMut for Redirect<'_> {
    fn visit_instr_mut(&mut self, instr: &mut Instr, _: &mut InstrLocId) {
        if let Instr::Call(Call { func }) | Instr::ReturnCall(walrus::ir::ReturnCall { func }) = instr {
            if let Some(&wrapper) = self.0.get(func) {
                *func = wrapper;
            }
        }
    }
}
