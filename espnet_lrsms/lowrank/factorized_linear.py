"""The factorized linear layer ``z = U (Vᵀ x) + b`` and its two initialisations.

Pure PyTorch: nothing here imports ESPnet.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

INIT_SCHEMES = ("svd", "kaiming", "kaiming_traditional")


def break_even_rank(in_features: int, out_features: int) -> float:
    """Rank at which ``U·Vᵀ`` holds as many weights as the dense matrix: m·n / (m + n)."""
    return in_features * out_features / (in_features + out_features)


class FactorizedLinear(nn.Module):
    """A linear layer whose weight is the product of two thin matrices.

    ``W ≈ U·Vᵀ`` with ``U`` of shape (out_features, rank) and ``Vᵀ`` of shape (rank, in_features),
    so that ``z = U (Vᵀ x) + b`` costs ``rank·(in + out)`` multiply-adds per input vector instead of
    ``in·out``.

    Args:
        in_features: n, size of each input vector.
        out_features: m, size of each output vector.
        rank: r, the inner dimension (1 <= r <= min(m, n)).
        bias: whether the layer adds a learnable bias (as ``nn.Linear``).

    Shapes:
        input (..., in_features) -> output (..., out_features).

    A freshly built layer is Kaiming-initialised (see :meth:`init_kaiming_`) so that its output
    variance equals that of a default ``nn.Linear``; :meth:`init_svd_` and :meth:`from_linear` give
    the spectral initialisation of the LR-SMS paper (Eq. 1), and :meth:`init_kaiming_traditional_`
    the baseline of the paper's Fig. 4 (each factor initialised on its own as ``nn.Linear``).

    The spectral init can be deferred (:meth:`defer_svd_init_`): the layer keeps the dense matrix
    and computes its SVD only when the factors are first needed (forward, ``state_dict``,
    :meth:`materialize_`). A ``load_state_dict`` that supplies ``u`` and ``vt`` drops the pending
    init unused, so loading a trained model costs no SVD. Until then ``u`` and ``vt`` hold NaN, so
    that reading them directly fails loudly instead of training from garbage.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(
                f"rank must be in [1, min({in_features}, {out_features})], got {rank}"
            )
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.rank = rank
        self.init_scheme = "kaiming"  # which init drew the current factors: one of INIT_SCHEMES
        self._svd_source: Optional[torch.Tensor] = None  # dense matrix of a deferred spectral init
        # True after ESPnet's initialize() drew U and Vᵀ as two independent matrices (its --init), until
        # reinit_factorized_ draws them again from a dense layer of that init
        self.redrawn_by_espnet_init = False
        self.u = nn.Parameter(torch.empty(out_features, rank, **factory))
        self.vt = nn.Parameter(torch.empty(rank, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.init_kaiming_()
        if self.bias is not None:
            bound = 1.0 / math.sqrt(in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._svd_source is not None:
            self.materialize_()
        return F.linear(F.linear(x, self.vt), self.u, self.bias)

    # ---------------------------------------------------------- initialisation
    @torch.no_grad()
    def init_svd_(self, dense_weight: torch.Tensor) -> "FactorizedLinear":
        """Spectral init (LR-SMS Eq. 1): the best rank-r approximation of ``dense_weight``.

        With ``W = Û Σ V̂ᵀ``: ``U = Û[:, :r] √Σ_r`` and ``Vᵀ = √Σ_r V̂[:, :r]ᵀ``. At full rank the
        layer then computes exactly ``dense_weight @ x``.
        """
        expected = (self.out_features, self.in_features)
        if tuple(dense_weight.shape) != expected:
            raise ValueError(f"dense weight has shape {tuple(dense_weight.shape)}, expected {expected}")
        u, vt = truncated_svd_factors(dense_weight.to(self.u.device), self.rank)
        self.u.copy_(u)
        self.vt.copy_(vt)
        self.init_scheme = "svd"
        self._svd_source = None
        return self

    def espnet_initialization_fn(self) -> None:
        """Called by ESPnet's ``initialize`` (``--init``) after it re-drew every matrix, U and Vᵀ included:
        noted, so that training refuses the result unless :func:`reinit_factorized_` repaired it
        (``kaiming_traditional`` factors are meant to be drawn that way)."""
        self.redrawn_by_espnet_init = self.init_scheme != "kaiming_traditional"

    @torch.no_grad()
    def defer_svd_init_(self, dense_weight: torch.Tensor) -> "FactorizedLinear":
        """:meth:`init_svd_` of ``dense_weight``, computed when the factors are first needed.

        Computed on the device the layer is on by then (the GPU, when the model was moved there
        before training), or never, when a checkpoint is loaded first.
        """
        expected = (self.out_features, self.in_features)
        if tuple(dense_weight.shape) != expected:
            raise ValueError(f"dense weight has shape {tuple(dense_weight.shape)}, expected {expected}")
        self._svd_source = dense_weight.detach()
        self.u.fill_(math.nan)
        self.vt.fill_(math.nan)
        self.init_scheme = "svd"
        return self

    @property
    def spectral_init_pending(self) -> bool:
        """True while a deferred spectral init waits to be computed."""
        return self._svd_source is not None

    @torch.no_grad()
    def materialize_(self) -> "FactorizedLinear":
        """Compute a deferred spectral init now (no-op when none is pending)."""
        source = self._svd_source
        if source is not None:
            if source.is_meta or self.u.is_meta:  # nothing to compute on the meta device
                self._svd_source = None
            else:
                self.init_svd_(source)
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.materialize_()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "u" in state_dict and prefix + "vt" in state_dict:
            self._svd_source = None  # the loaded factors replace the pending init
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def init_kaiming_(self, dense_std: Optional[float] = None) -> "FactorizedLinear":
        """Independent Gaussian factors whose product keeps a dense layer's output variance.

        ``Vᵀ`` keeps the input variance (Var = 1/n, Kaiming fan-in with gain 1) and ``U`` carries the
        dense layer's scale: Var(U) = σ_W²·n / r, so Var(U Vᵀ x) = n σ_W² Var(x) as for the dense W.

        Args:
            dense_std: σ_W, the standard deviation of the dense weight being replaced. Default: that
                of ``nn.Linear``'s own init, U(-1/√n, 1/√n), i.e. 1/√(3n).
        """
        n, r = self.in_features, self.rank
        if dense_std is None:
            dense_std = 1.0 / math.sqrt(3 * n)
        nn.init.normal_(self.vt, std=1.0 / math.sqrt(n))
        nn.init.normal_(self.u, std=dense_std * math.sqrt(n / r))
        self.init_scheme = "kaiming"
        self._svd_source = None
        return self

    @torch.no_grad()
    def init_kaiming_traditional_(self) -> "FactorizedLinear":
        """Each factor initialised on its own as PyTorch initialises a linear layer (Fig. 4's baseline).

        ``Vᵀ`` as ``nn.Linear(n, r)`` and ``U`` (with the bias) as ``nn.Linear(r, m)``: uniform in
        ±1/√fan_in. The product's output variance is a third of the dense layer's (1/9 against 1/3
        for unit-variance inputs), which is why the paper finds this init less stable than SVD.
        """
        nn.init.kaiming_uniform_(self.vt, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.u, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.rank)
            nn.init.uniform_(self.bias, -bound, bound)
        self.init_scheme = "kaiming_traditional"
        self._svd_source = None
        return self

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, rank: int, init: str = "svd", defer: bool = False
    ) -> "FactorizedLinear":
        """Build a rank-``rank`` layer that replaces ``linear`` (same device, dtype and bias).

        ``init="svd"`` truncates the SVD of ``linear.weight`` (compressing a trained layer, or
        Eq. 1 on a freshly initialised one; ``defer=True`` postpones the SVD, see
        :meth:`defer_svd_init_`); ``init="kaiming"`` draws independent factors scaled to
        ``linear.weight``'s standard deviation; ``init="kaiming_traditional"`` draws each factor
        as its own ``nn.Linear`` (the bias too; the others copy ``linear``'s bias).
        """
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {init!r}; choose one of {INIT_SCHEMES}")
        weight = linear.weight
        # skip_init: no throw-away random draw, so the global RNG stream (and with it the init of
        # every later layer) is the one the dense model would have seen
        layer = nn.utils.skip_init(
            cls,
            linear.in_features,
            linear.out_features,
            rank,
            bias=linear.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        if init == "kaiming_traditional":
            return layer.init_kaiming_traditional_()
        if init == "svd" and defer:
            layer.defer_svd_init_(weight)
        elif init == "svd":
            layer.init_svd_(weight)
        elif weight.is_meta:  # shapes only (parameter counts): there is no σ_W to read
            layer.init_kaiming_()
        else:
            layer.init_kaiming_(dense_std=float(weight.detach().float().std()))
        if linear.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(linear.bias)
        return layer

    # ------------------------------------------------------------------ report
    def dense_weight(self) -> torch.Tensor:
        """The (out_features, in_features) matrix U·Vᵀ that this layer applies."""
        self.materialize_()
        return self.u @ self.vt

    @property
    def num_weights(self) -> int:
        """Weights in U and Vᵀ (bias excluded): r·(m + n)."""
        return self.rank * (self.in_features + self.out_features)

    @property
    def dense_num_weights(self) -> int:
        """Weights the dense layer it replaces would hold: m·n."""
        return self.in_features * self.out_features

    @property
    def macs_per_token(self) -> int:
        """Multiply-adds for one input vector (2 FLOPs each): r·(m + n)."""
        return self.num_weights

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, bias={self.bias is not None}"
        )



def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)


def _expanded_rows(x: torch.Tensor) -> bool:
    """True when ``x`` is one batch row repeated by ``expand`` (stride 0), as beam search passes the encoder output."""
    return x.dim() >= 2 and x.size(0) > 1 and x.stride(0) == 0


def shared_input_linears(layers, inputs):
    """``[layer(x) for layer, x in zip(layers, inputs)]``, computed with less work, same results:

    * the factorized layers that read the same tensor (q, k and v of self-attention) share one
      ``Vᵀx`` product: ``x`` times the concatenated ``Vᵀ``, split by rank;
    * an input that is one row expanded along the batch (stride 0) is projected once and the
      output expanded (dense layers too).

    A layer with hooks (unit dropout's masks, MAC counters) is called as a module on the input as
    given, so its hooks run.
    """
    outputs = [None] * len(layers)
    groups = {}
    for i, (layer, x) in enumerate(zip(layers, inputs)):
        if _hooked(layer):
            outputs[i] = layer(x)
        elif isinstance(layer, FactorizedLinear):
            groups.setdefault(id(x), []).append(i)
        else:
            outputs[i] = layer(x[:1]).expand(x.size(0), *x.shape[1:-1], -1) if _expanded_rows(x) else layer(x)
    for members in groups.values():
        x = inputs[members[0]]
        rows = x.size(0) if _expanded_rows(x) else None
        if rows is not None:
            x = x[:1]
        fused = [layers[i].materialize_() for i in members]
        if len(fused) == 1:
            parts = [fused[0](x)]
        else:
            inner = F.linear(x, torch.cat([layer.vt for layer in fused]))
            hidden = inner.split([layer.rank for layer in fused], dim=-1)
            parts = [F.linear(h, layer.u, layer.bias) for layer, h in zip(fused, hidden)]
        for i, out in zip(members, parts):
            outputs[i] = out if rows is None else out.expand(rows, *out.shape[1:])
    return outputs


@torch.no_grad()
def truncated_svd_factors(weight: torch.Tensor, rank: int):
    """``(U √Σ_r, √Σ_r Vᵀ)`` of the top-``rank`` singular triplets of ``weight`` (m × n).

    Computed in float64 from the eigendecomposition of the smaller Gram matrix ``AᵀA`` (A = W, or
    Wᵀ when W is wide): with ``AᵀA = V Σ² Vᵀ``, the top-r right singular vectors ``V_r`` give
    ``U_r Σ_r = A V_r``. That is 2-3× faster than LAPACK's SVD on the model's shapes and, in float64,
    agrees with it far below float32 precision for the top singular triplets (the product
    ``U √Σ · √Σ Vᵀ = A V_r V_rᵀ`` does not even depend on the accuracy of Σ). Cast back to
    ``weight``'s dtype; computed on ``weight``'s device.
    """
    w = weight.detach().to(torch.float64)
    wide = w.shape[0] < w.shape[1]
    a = w.T if wide else w  # tall: (p, q), p >= q
    eigenvalues, eigenvectors = torch.linalg.eigh(a.T @ a)  # ascending
    right = eigenvectors[:, -rank:].flip(-1)  # (q, r): top-r right singular vectors of a, descending
    sigma = eigenvalues[-rank:].flip(-1).clamp_min(0).sqrt()
    root = sigma.sqrt()
    # a V_r = U_r Σ_r, so U_r √Σ_r = a V_r / √Σ_r (0 where σ = 0: that direction carries nothing)
    inv_root = torch.where(root > 0, 1.0 / root.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    left = (a @ right) * inv_root
    right = right.T * root[:, None]  # √Σ_r V_rᵀ, (r, q)
    if wide:  # W = Aᵀ = (U Σ Vᵀ)ᵀ: swap the roles of the two factors
        left, right = right.T, left.T
    return left.to(weight.dtype), right.to(weight.dtype)


def frobenius_decay_grads(u: torch.Tensor, vt: torch.Tensor):
    """Gradients of ``‖u·vt‖²_F / 2`` with respect to ``u`` and ``vt``, through r × r Gram matrices:
    ``u·(vt·vtᵀ)`` and ``(uᵀ·u)·vt`` (Frobenius decay, Khodak et al., ICLR 2021). In the factors' dtype
    also under autocast (``use_amp``), which would compute the products in bfloat16 or float16."""
    if u.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(u.device.type):
        with torch.autocast(device_type=u.device.type, enabled=False):
            return frobenius_decay_grads(u, vt)
    return u @ (vt @ vt.T), (u.T @ u) @ vt
