"""The mean prediction of a random model."""

import math

import pytest
import torch
from torch import nn

from nodekit.fields import SineField
from nodekit.models.averaging import MeanPrediction, mean_prediction
from nodekit.models.classifiers import ODENet
from nodekit.models.sde import DropoutDiffusion, SDEBlock


def sde_net():
    torch.manual_seed(0)
    return ODENet(nn.Linear(6, 4), SDEBlock(SineField(4), DropoutDiffusion(0.5), t1=1.0, dt=0.1), nn.Linear(4, 3))


def test_mean_prediction_is_the_average_of_the_draws_probabilities():
    net, x = sde_net(), torch.randn(5, 6)
    net.block.reseed(0)
    avg = MeanPrediction(net, draws=4)(x)
    net.block.reseed(0)
    draws = net(x.repeat(4, 1)).softmax(1).view(4, 5, 3).mean(0)
    assert torch.allclose(avg.exp(), draws, atol=1e-6)
    assert torch.allclose(avg.exp().sum(1), torch.ones(5), atol=1e-6)


def test_the_encoder_split_gives_the_same_numbers():
    net, x = sde_net(), torch.randn(5, 6)
    net.block.reseed(0)
    whole = MeanPrediction(net, draws=3)(x)
    net.block.reseed(0)
    split = mean_prediction(net, draws=3)(x)
    assert torch.allclose(whole, split, atol=1e-6)


def test_one_draw_of_a_deterministic_model_is_its_log_softmax():
    model, x = nn.Linear(6, 3), torch.randn(4, 6)
    assert torch.allclose(MeanPrediction(model, draws=1)(x), model(x).log_softmax(1), atol=1e-6)
    assert torch.allclose(MeanPrediction(model, draws=7)(x), model(x).log_softmax(1), atol=1e-5)
    assert math.isclose(MeanPrediction(model, 2)(x).exp().sum().item(), 4, rel_tol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="draws"):
        MeanPrediction(nn.Linear(2, 2), draws=0)
    with pytest.raises(ValueError, match="encoder, block and decoder"):
        mean_prediction(nn.Linear(2, 2))
