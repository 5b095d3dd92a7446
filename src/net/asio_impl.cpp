// The one translation unit that compiles Asio, Asio's SSL and Beast (separate compilation keeps
// rebuilds fast: every other file only sees declarations).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
