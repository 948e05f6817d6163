"""Reference outputs of the video VAE *encoders* (the golden set has their decoders only).

Runs diffusers' own AutoencoderKLWan (v0.35.2) and AutoencoderKLHunyuanVideo (v0.32.2) -- the versions and the
environment the golden set itself was made with (Debian 12's python3-torch 1.13, an SDPA shim, huggingface_hub stubbed
out) -- on the golden set's tiny weights, and writes cases in the golden format (case.json, inputs/outputs.safetensors)
under src/test/reference/. Nothing of diffusers is copied: it is imported from a source checkout.

    apt-get install python3-torch python3-numpy python3-packaging python3-regex python3-filelock python3-tqdm python3-pil
    git -C diffusers archive v0.35.2 src | tar -x -C /tmp/d0.35.2     (and v0.32.2 into /tmp/d0.32.2)
    /usr/bin/python3 tools/reference/video_vae_encode.py --golden ../shared/golden --diffusers-0.35.2 /tmp/d0.35.2/src \
        --diffusers-0.32.2 /tmp/d0.32.2/src --out src/test/reference
"""
import argparse, importlib, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument('--golden', required=True)
ap.add_argument('--diffusers-0.35.2', dest='d35', required=True)
ap.add_argument('--diffusers-0.32.2', dest='d32', required=True)
ap.add_argument('--out', required=True)
ap.add_argument('--family', choices=['wan', 'hunyuan'], help='one family only (each runs in its own process: two diffusers versions)')
args = ap.parse_args()

if args.family is None:
    for fam in ('wan', 'hunyuan'):
        subprocess.run([sys.executable] + sys.argv + ['--family', fam], check=True)
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubs  # noqa: E402  (before diffusers: stubs huggingface_hub, adds the SDPA shim)
import torch  # noqa: E402

src = args.d35 if args.family == 'wan' else args.d32
sys.path.insert(0, src)
torch.set_grad_enabled(False)

def rel(path, start):
    return os.path.relpath(os.path.abspath(path), os.path.abspath(start))

def write_case(area, name, kind, description, folder, inputs, outputs, params, extra=None):
    case_dir = os.path.join(args.out, area, 'cases', name)
    os.makedirs(case_dir, exist_ok=True)
    stubs.save_safetensors(os.path.join(case_dir, 'inputs.safetensors'), inputs)
    stubs.save_safetensors(os.path.join(case_dir, 'outputs.safetensors'), {k: v for k, (v, _) in outputs.items()})
    case = {
        'case': area + '/' + name, 'kind': kind, 'description': description,
        'model': {'diffusers_folder': rel(folder, case_dir), 'weights_dtype': 'float32'},
        'params': params,
        'inputs': {k: {'shape': list(v.shape), 'dtype': 'float32'} for k, v in inputs.items()},
        'outputs': {k: {'desc': d, 'shape': list(v.shape), 'dtype': 'float32'} for k, (v, d) in outputs.items()},
        'compare': {k: {'atol': 1e-4, 'rtol': 1e-4} for k in outputs},
        'inputs_file': 'inputs.safetensors', 'outputs_file': 'outputs.safetensors',
        'generator': {'script': 'tools/reference/video_vae_encode.py', 'versions': {
            'python': sys.version.split()[0], 'torch': torch.__version__, 'sdpa_shim': True,
            'diffusers': {'snapshot': 'huggingface/diffusers', 'tag': 'v0.35.2' if args.family == 'wan' else 'v0.32.2'}}},
    }
    if extra: case.update(extra)
    with open(os.path.join(case_dir, 'case.json'), 'w') as f:
        json.dump(case, f, indent=2)
    print('wrote', case_dir)

def video(seed, b, f, h, w):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, f, h, w, generator=g) * 2 - 1       # pixels in [-1, 1], as the pipelines feed the VAE

def load(cls, folder):
    cfg = json.load(open(os.path.join(folder, 'config.json')))
    init = {k: v for k, v in cfg.items() if not k.startswith('_')}
    vae = cls(**init).eval()
    missing, unexpected = vae.load_state_dict(stubs.load_safetensors(os.path.join(folder, 'diffusion_pytorch_model.safetensors')), strict=True), None
    return vae, cfg

if args.family == 'wan':
    from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan
    folder = os.path.join(args.golden, 'wan_vae', 'models', 'vae')
    vae, cfg = load(AutoencoderKLWan, folder)
    mean_c = torch.tensor(cfg['latents_mean']).view(1, -1, 1, 1, 1)
    std_c = torch.tensor(cfg['latents_std']).view(1, -1, 1, 1, 1)
    sigma_data = 1.0
    for name, (seed, b, f, h, w) in {'encode_f1_32x48_b1': (1, 1, 1, 32, 48), 'encode_f5_32x48_b2': (2, 2, 5, 32, 48),
                                     'encode_f9_16x32_b1': (3, 1, 9, 16, 32)}.items():
        x = video(seed, b, f, h, w)
        dist = vae.encode(x).latent_dist
        outputs = {
            'mean': (dist.mean, 'posterior mean (B,16,1+(F-1)/4,H/8,W/8): quant_conv(encoder(x)) chunk by chunk (first frame, then 4 at a time, with the feature cache)'),
            'std': (dist.std, 'posterior std, exp(0.5*clamp(logvar,-30,20))'),
            'normalized_mean': ((dist.mean - mean_c) / std_c * sigma_data, '(mean - latents_mean) / latents_std * sigma_data (Cosmos-Predict2, sigma_data 1.0)'),
        }
        write_case('wan_vae', name, 'wan_vae_encode',
                   'Wan 2.1 / Cosmos-Predict2 encode: AutoencoderKLWan.encode(video).latent_dist (DiagonalGaussian: mean, std from logvar clamped to [-30,20]); normalized_mean = (mean - latents_mean) / latents_std * sigma_data',
                   folder, {'video': x}, outputs, {'video_frames': f, 'video_size_hw': [h, w], 'sigma_data': sigma_data})
else:
    from diffusers.models.autoencoders.autoencoder_kl_hunyuan_video import AutoencoderKLHunyuanVideo
    folder = os.path.join(args.golden, 'hunyuan_video_vae', 'models', 'vae')
    scaling = json.load(open(os.path.join(folder, 'config.json')))['scaling_factor']
    cases = {
        'encode_f1_32x48_b1': ((1, 1, 1, 32, 48), None),
        'encode_f9_32x48_b2': ((2, 2, 9, 32, 48), None),
        'encode_f21_16x16_b1': ((3, 1, 21, 16, 16), None),  # > 16 frames: diffusers' _temporal_tiled_encode (chunks of 17, stride 12)
        'encode_f5_48x64_tiled': ((4, 1, 5, 48, 64), {'tile_sample_min_height': 32, 'tile_sample_min_width': 32,
                                                       'tile_sample_stride_height': 16, 'tile_sample_stride_width': 16}),
    }
    for name, ((seed, b, f, h, w), tiling) in cases.items():
        vae, cfg = load(AutoencoderKLHunyuanVideo, folder)
        if tiling: vae.enable_tiling(**tiling)
        x = video(seed, b, f, h, w)
        dist = vae.encode(x).latent_dist
        outputs = {
            'mean': (dist.mean, 'posterior mean (B,16,1+(F-1)/4,H/8,W/8)'),
            'std': (dist.std, 'posterior std, exp(0.5*clamp(logvar,-30,20))'),
            'normalized_mean': (dist.mean * scaling, 'mean * scaling_factor (HunyuanVideo: no shift)'),
        }
        params = {'video_frames': f, 'video_size_hw': [h, w], 'tiling': bool(tiling),
                  'framewise_encoding_triggered': f > vae.tile_sample_min_num_frames}
        if tiling: params['tiling_settings'] = tiling
        write_case('hunyuan_video_vae', name, 'hunyuan_video_vae_encode',
                   'HunyuanVideo encode: AutoencoderKLHunyuanVideo.encode(video).latent_dist (encoder + quant_conv over all frames at once; over 16 frames diffusers 0.32.2 encodes overlapping chunks of 17 frames every 12 and blends them; with enable_tiling, overlapping spatial tiles)',
                   folder, {'video': x}, outputs, params)
