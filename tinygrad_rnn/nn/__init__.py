"""Neural-network modules: containers, feed-forward layers and the recurrent cells and layers,
and models built from them (CharRNN); echo state networks (ESN)."""
from . import init, utils
from .cells import GRUCell, LSTMCell, RNNCell
from .feedback import OutputFeedbackRNN
from .language import CharRNN
from .layers import Dropout, Embedding, Linear
from .leaky import LeakyRNN
from .module import Module, ModuleList, Parameter
from .reservoir import ESN
from .rnn import GRU, LSTM, RNN
from .seq2seq import Attention, Decoder, Encoder, Seq2Seq

__all__ = ["Module", "ModuleList", "Parameter", "Linear", "Embedding", "Dropout", "RNNCell", "LSTMCell",
           "GRUCell", "RNN", "LSTM", "GRU", "LeakyRNN", "OutputFeedbackRNN", "CharRNN", "ESN", "init", "utils",
           "Attention", "Encoder", "Decoder", "Seq2Seq"]
