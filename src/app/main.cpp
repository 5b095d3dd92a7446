#include <cstdio>
int main() { std::puts("openbridge " OPENBRIDGE_VERSION); return 0; }
