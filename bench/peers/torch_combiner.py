"""PyTorch re-implementation of the CLIP4Cir / GeneCIS combiner (eval mode), for parity with
vlkernels: loads the weights vlkernels wrote (safetensors, PyTorch names) with load_state_dict,
runs the inputs from a second safetensors file (image, text, ours) and prints one JSON line with
the largest absolute difference from vlkernels' outputs.

usage: torch_combiner.py <weights.safetensors> <io.safetensors>"""
import json
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(json.dumps({"skipped": f"python module missing ({e})"}))
    sys.exit(0)


class Combiner(torch.nn.Module):
    def __init__(self, d, p, h):
        super().__init__()
        self.text_projection_layer = torch.nn.Linear(d, p)
        self.image_projection_layer = torch.nn.Linear(d, p)
        self.combiner_layer = torch.nn.Linear(2 * p, h)
        self.output_layer = torch.nn.Linear(h, d)
        self.dynamic_scalar = torch.nn.Sequential(torch.nn.Linear(2 * p, h), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                                  torch.nn.Linear(h, 1), torch.nn.Sigmoid())
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, img, txt):
        t = self.dropout(F.relu(self.text_projection_layer(txt)))
        i = self.dropout(F.relu(self.image_projection_layer(img)))
        c = torch.cat((t, i), -1)
        h = self.dropout(F.relu(self.combiner_layer(c)))
        lam = self.dynamic_scalar(c)
        return F.normalize(self.output_layer(h) + lam * txt + (1 - lam) * img, dim=-1)


def main():
    try:
        from safetensors.torch import load_file
    except ImportError as e:
        print(json.dumps({"skipped": f"python module missing ({e})"}))
        return
    sd = load_file(sys.argv[1])
    io = load_file(sys.argv[2])
    p, d = sd["text_projection_layer.weight"].shape
    h = sd["combiner_layer.weight"].shape[0]
    m = Combiner(d, p, h).eval()
    m.load_state_dict(sd)
    with torch.no_grad():
        out = m(io["image"].double().float(), io["text"])
    diff = (out - io["ours"]).abs().max().item()
    print(json.dumps({"maxAbsDiff": diff, "rows": int(out.shape[0])}))


if __name__ == "__main__":
    main()
