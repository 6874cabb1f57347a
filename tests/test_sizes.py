"""lab.sizes counts MB as 10^6 bytes, the way every week's tables do."""
import torch

from lab import sizes


def test_file_mb_sums_the_files_and_counts_a_missing_one_as_zero(tmp_path):
    (tmp_path / "a.onnx").write_bytes(b"x" * 1_500_000)
    (tmp_path / "b.data").write_bytes(b"x" * 250_000)
    assert sizes.file_mb(tmp_path / "a.onnx", tmp_path / "b.data", tmp_path / "absent.data") == 1.75


def test_safetensors_mb_is_four_bytes_a_float32_weight_plus_a_small_header():
    model = torch.nn.Sequential(torch.nn.Linear(500, 400), torch.nn.Linear(400, 2))
    n = sum(p.numel() for p in model.parameters())
    mb = sizes.safetensors_mb(model)
    assert 4 * n / 1e6 < mb < 4 * n / 1e6 + 0.01          # the header names 4 tensors: well under 10 kB
