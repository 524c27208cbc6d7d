# Builds dist\avatar-app-VERSION-windows-amd64\ and its .zip on Windows (PowerShell, Python 3.11+
# from python.org on PATH as `py`). Not run by CI: the CI machine is Linux.
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

$venv = "build\package-venv"
if (-not (Test-Path "$venv\Scripts\python.exe")) {
    py -3.11 -m venv $venv
}
$python = "$venv\Scripts\python.exe"
# Runtime dependencies and PyInstaller only: no torch, no test tools.
& $python -m pip install --disable-pip-version-check -r packaging\requirements.txt ".[gui,say]"
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }
& $python packaging\make_icons.py build\icons
& $python -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller `
    packaging\avatar-app.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

$version = & $python -c "from importlib.metadata import version; print(version('avatar-app'))"
$name = "avatar-app-$version-windows-amd64"
Copy-Item packaging\README.md "dist\$name\README.md"
Compress-Archive -Path "dist\$name" -DestinationPath "dist\$name.zip" -Force
Write-Host "Built dist\$name (avatar-app.exe opens the window; avatar-app-cli.exe runs commands)"
