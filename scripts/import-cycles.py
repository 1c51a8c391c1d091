#!/usr/bin/env python3
"""Import cycles between the crate's modules: every `crate::`, `super::` and `self::`
path in src/ (tests and comments left out), resolved to the deepest module that
defines items, so that a parent `mod.rs` that only declares and re-exports is not a
node. Prints each cycle; exits 1 if any is left other than tower's layer <-> service
pairs.

    python3 scripts/import-cycles.py
"""
import os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import re,glob,collections
files=[f for f in glob.glob('src/**/*.rs',recursive=True) if '/bin/' not in f]
def modpath(f):
    p=f[len('src/'):-3].split('/')
    if p[-1] in('mod','lib'): p=p[:-1]
    return tuple(p)
mods={modpath(f):f for f in files}
def resolve(cur, path, is_modrs):
    # path: list of segments after crate:: or super::
    return path
def defines(f):
    code=open(f).read().split('#[cfg(test)]\nmod tests')[0]
    return bool(re.search(r'^(pub(\([a-z]+\))? )?(async )?(struct|enum|trait|fn|impl|const|type|static|macro_rules)\b',code,re.M))
definers={m for m,f in mods.items() if defines(f)}
g=collections.defaultdict(set)
for f in files:
    mp=modpath(f)
    s=open(f).read()
    code='\n'.join(l for l in s.split('\n') if not l.strip().startswith('//'))
    code=code.split('#[cfg(test)]\nmod tests')[0]
    parent=mp[:-1]
    for m in re.finditer(r'\b(crate|super|self)((?:::\w+)+)',code):
        segs=m.group(2).strip(':').split('::')
        if m.group(1)=='crate': base=()
        elif m.group(1)=='super': base=parent
        else: base=mp
        target=base
        best=None
        for sgm in segs:
            target=target+(sgm,)
            if target in mods: best=target
        if best and best!=mp and best in definers:
            # ignore parent mod.rs re-export edges (a child importing from its parent mod)
            g[mp].add(best)
# SCC
idx={};low={};st=[];on=set();out=[];c=[0]
import sys
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in g.get(v,()):
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: out.append(comp)
for v in list(g):
    if v not in idx: sc(v)
ALLOWED = [{'audiohook/layer', 'audiohook/service'}, {'webhook/layer', 'webhook/service'}]
bad = []
for comp in out:
    names = {'/'.join(x) for x in comp}
    print('cycle:', ' <-> '.join(sorted(names)), '(tower layer/service pair)' if names in ALLOWED else '')
    if names not in ALLOWED:
        bad.append(names)
if not out:
    print('no import cycles')
sys.exit(1 if bad else 0)
