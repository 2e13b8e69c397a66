"""Steps per second and peak memory of full fine-tuning, LoRA and QLoRA.

Each method trains the bundled base model for the same number of steps on the
review sentiment task of chapter 9 (`classify` family of `llmlab.world`, text
`Review: {review}\\nSentiment: {label}<|end|>`), then scores the 150 held-out
reviews: an answer is correct when greedy decoding gives exactly the label and
the end token. Methods:

- full: every parameter trained in float32 (AdamW, lr 5e-4);
  every method clips the gradient norm to 1.0 before each step;
- lora: rank 8, alpha 16 on q_proj, k_proj, v_proj, o_proj (AdamW, lr 3e-3);
- qlora: the same adapters on the base loaded in 4-bit NF4.

Peak memory on the CPU is the peak resident set size (RSS) during training
minus the RSS before it, sampled every millisecond from /proc/self/statm
(Linux); on CUDA it is `torch.cuda.max_memory_allocated` minus the allocation
before training.

NOTE: the RSS figure of a method that runs after another can read near zero,
because the allocator reuses pages that the earlier run freed. Run one method
at a time (--methods lora) for a cleaner CPU figure. The CUDA path has not been
run on a GPU yet. The last line checks the targets: LoRA trains at most 2 % of
the parameters and reaches at least 95 % of full fine-tuning's accuracy.

Run: .venv/bin/python benchmarks/bench_finetune.py [--steps 150] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch

import llmlab
import llmlab.world

LORA_LR = 3e-3
FULL_LR = 5e-4
# Without clipping, LoRA at LORA_LR stalls on this task (held-out accuracy
# 0.333 after 150 steps, 0.660 after 300); clipped, it matches full fine-tuning.
MAX_GRAD_NORM = 1.0
MAX_TRAINABLE_SHARE = 0.02
MIN_ACCURACY_RATIO = 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150,
                        help="training steps of every method (default 150)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="examples per training step (default 8)")
    parser.add_argument("--methods", nargs="+", default=["full", "lora", "qlora"],
                        choices=["full", "lora", "qlora"],
                        help="methods to run (default all three)")
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"],
                        help="device to run on; repeat for both. Default: the "
                             "CPU, and CUDA too when it is available")
    return parser.parse_args()


def review_format(record: dict, end: str) -> tuple[str, str]:
    review = record["prompt"].split("Review: ", 1)[1]
    return f"Review: {review}\nSentiment:", f" {record['answer']}{end}"


def collate(tokenizer, records: list[dict], device) -> dict:
    """Return right-padded input ids and labels that score only the answer."""
    rows, labels = [], []
    for record in records:
        prompt, answer = review_format(record, tokenizer.eos_token)
        prompt_ids = tokenizer(prompt).input_ids
        answer_ids = tokenizer(answer).input_ids
        rows.append(prompt_ids + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
    T = max(len(row) for row in rows)
    pad = [tokenizer.pad_token_id]
    batch = {
        "input_ids": [row + pad * (T - len(row)) for row in rows],
        "attention_mask": [[1] * len(row) + [0] * (T - len(row)) for row in rows],
        "labels": [label + [-100] * (T - len(label)) for label in labels],
    }
    return {key: torch.tensor(value, device=device) for key, value in batch.items()}


@torch.no_grad()
def accuracy(model, tokenizer, records: list[dict], device) -> float:
    """Return the share of records whose greedy answer is exactly the label."""
    model.eval()
    batch = collate(tokenizer, records, device)
    logits = model(input_ids=batch["input_ids"],
                   attention_mask=batch["attention_mask"]).logits
    predicted = logits[:, :-1].argmax(dim=-1)  # (B, T - 1)
    targets = batch["labels"][:, 1:]
    correct = ((predicted == targets) | (targets == -100)).all(dim=-1)
    return correct.float().mean().item()


def build_model(method: str, device: str):
    """Return (model, lr) for one method, loaded fresh on `device`."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    dtype = torch.float32
    if method == "full":
        return llmlab.load_model("base", dtype=dtype, device_map=device), FULL_LR
    quantization = "4bit" if method == "qlora" else None
    base = llmlab.load_model("base", quantization, dtype=dtype, device_map=device)
    if quantization:
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                        target_modules=llmlab.attention_target_modules(base))
    model = get_peft_model(base, config)
    llmlab.check_trainable(model)
    return model, LORA_LR


class PeakMemory:
    """Peak memory above the level at entry: CUDA allocations or sampled RSS."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
            return self
        self._before = rss_bytes()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc_info):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._before
            return
        self._done.set()
        self._sampler.join()
        self.peak = max(self.peak - self._before, 0)

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def train(model, tokenizer, records, args, lr: float, device: str):
    """Train `args.steps` steps; return (steps per second, peak memory bytes)."""
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        for step in range(args.steps):
            first = step * args.batch_size % len(records)
            batch = collate(tokenizer, records[first:first + args.batch_size], device)
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return args.steps / seconds, memory.peak


def run_device(device: str, args, tokenizer, train_set, held_out) -> dict:
    print(f"\n{device}: {args.steps} steps of {args.batch_size} reviews, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'method':<8}{'steps/s':>9}{'peak MiB':>10}{'trainable':>12}"
          f"{'share':>8}{'accuracy':>10}")
    results = {}
    for method in args.methods:
        model, lr = build_model(method, device)
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if method != "full":
            total = model.get_nb_trainable_parameters()[1]
        steps_per_s, peak = train(model, tokenizer, train_set, args, lr, device)
        score = accuracy(model, tokenizer, held_out, device)
        results[method] = {"share": trainable / total, "accuracy": score}
        print(f"{method:<8}{steps_per_s:9.2f}{peak / 2**20:10.1f}{trainable:12,}"
              f"{trainable / total:8.2%}{score:10.3f}")
        del model
    return results


def print_target_check(results: dict) -> None:
    if "full" not in results or "lora" not in results:
        print("target check skipped: needs both full and lora")
        return
    share = results["lora"]["share"]
    full, lora = results["full"]["accuracy"], results["lora"]["accuracy"]
    ratio = lora / full if full else float("nan")
    met = share <= MAX_TRAINABLE_SHARE and ratio >= MIN_ACCURACY_RATIO
    print(f"target: LoRA trains {share:.2%} (max {MAX_TRAINABLE_SHARE:.0%}); "
          f"accuracy LoRA {lora:.3f} / full {full:.3f} = {ratio:.3f} "
          f"(min {MIN_ACCURACY_RATIO}): {'met' if met else 'NOT met'}")


def main() -> None:
    args = parse_args()
    llmlab.setup()
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    world = llmlab.world.build(seed=0)
    pool = world.instructions("train", n=4000, followups=False)
    train_set = [r for r in pool if r["family"] == "classify"]
    held_out = world.eval_sets()["classify"]
    tokenizer = llmlab.load_tokenizer("base")
    for device in devices:
        print_target_check(run_device(device, args, tokenizer, train_set, held_out))


if __name__ == "__main__":
    main()
