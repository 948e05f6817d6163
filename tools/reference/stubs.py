"""Stubs so that diffusers' model modules import on Debian's torch 1.13 without huggingface_hub/safetensors installed."""
import sys, types, importlib.abc, importlib.machinery
import torch, torch.nn.functional as F

class _Any:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Any()
    def __getattr__(self, n): return _Any()
    def __mro_entries__(self, bases): return (object,)
    def __bool__(self): return False

class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith('__'): raise AttributeError(name)
        if name.startswith('is_'): return lambda *a, **k: False
        if name.isupper(): return False if any(w in name for w in ('OFFLINE', 'DISABLE', 'ENABLE', 'TELEMETRY')) else '/tmp/hf'
        if name[:1].isupper(): return type(name, (Exception,) if name.endswith(('Error','Exception')) else (object,), {})
        return _Any()

class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    roots = ('huggingface_hub', 'safetensors', 'importlib_metadata')
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = _StubModule(spec.name); m.__path__ = []; m.__version__ = '0.99.0'; return m
    def exec_module(self, m): pass

sys.meta_path.insert(0, _Finder())

if not hasattr(F, 'scaled_dot_product_attention'):
    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
        s = scale if scale is not None else q.shape[-1] ** -0.5
        w = (q @ k.transpose(-2, -1)) * s
        if is_causal:
            L, S = q.shape[-2], k.shape[-2]
            w = w.masked_fill(torch.ones(L, S, dtype=torch.bool).tril().logical_not(), float('-inf'))
        if attn_mask is not None:
            w = w.masked_fill(attn_mask.logical_not(), float('-inf')) if attn_mask.dtype == torch.bool else w + attn_mask
        return torch.softmax(w, dim=-1) @ v
    F.scaled_dot_product_attention = sdpa

import json, struct, numpy as np
def load_safetensors(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    dt = {'F32': np.float32, 'F16': np.float16, 'BF16': None, 'F64': np.float64, 'I64': np.int64}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt[v['dtype']]).reshape(v['shape'])
        out[k] = torch.from_numpy(a.copy())
    return out

def save_safetensors(path, tensors, metadata=None):
    h = {}; blobs = []; off = 0
    for k, t in tensors.items():
        a = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        h[k] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(a)]}; blobs.append(a); off += len(a)
    if metadata: h['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    hb = json.dumps(h).encode(); hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb))); f.write(hb); [f.write(x) for x in blobs]

for _n in ['float8_e4m3fn', 'float8_e5m2', 'float8_e4m3fnuz', 'float8_e5m2fnuz', 'uint16', 'uint32', 'uint64'] + ['uint%d' % i for i in range(1, 8)] + ['int%d' % i for i in range(1, 8)]:
    if not hasattr(torch, _n): setattr(torch, _n, torch.float16 if _n.startswith('float') else torch.int16)
